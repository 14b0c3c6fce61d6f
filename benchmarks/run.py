"""The performance table: this program against its references, side by side, in one run.

    .venv/bin/python benchmarks/run.py            # everything (a few minutes; writes 1 GiB to a temp dir)
    .venv/bin/python benchmarks/run.py --quick    # 200 MiB instead of 1 GiB

Every case runs against the sandbox forge in its own process on loopback; every figure is the
median of several runs (peak memory: the largest). Wall times are of whole processes, so they
include start-up.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-token"
REPOSITORY = "bench/app"
HELPER = """
import json, resource, subprocess, sys, time
start = time.time()
code = subprocess.run(json.loads(sys.argv[1]), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
print(json.dumps([code, start, time.time() - start, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024]))
"""


class Sandbox:
    """The sandbox forge as a separate process, driven through its control panel."""

    def __init__(self, tags: list[str]):
        command = [sys.executable, "-m", "release_action.sandbox", "serve", "--port", "0",
                   "--repository", REPOSITORY, "--token", TOKEN, *[f"--tag={tag}" for tag in tags]]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        self.url = self.process.stdout.readline().split(" at ", 1)[1].split(" ", 1)[0]

    def control(self, method: str, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        with urllib.request.urlopen(urllib.request.Request(self.url + path, method=method, data=data), timeout=60) as answer:
            return json.loads(answer.read() or b"null")

    def create_release(self, tag: str) -> str:
        request = urllib.request.Request(
            f"{self.url}/rest-api/project/{REPOSITORY}/release", method="POST",
            data=json.dumps({"tagName": tag, "title": tag}).encode(),
            headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as answer:
            return json.loads(answer.read())["id"]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def measure(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float, float]:
    """(start time, wall seconds, peak RSS in MB) of one command, run from a fresh helper process."""
    out = subprocess.run([sys.executable, "-c", HELPER, json.dumps(command)], env=env or dict(os.environ),
                         capture_output=True, text=True, check=True).stdout
    code, start, seconds, peak = json.loads(out)
    if code != 0:
        raise SystemExit(f"{' '.join(command[:3])} failed with exit code {code}")
    return start, seconds, peak


def program(sandbox: Sandbox, tag: str, files: str, **inputs: str) -> tuple[list[str], dict[str, str]]:
    env = {**os.environ, "INPUT_API_URL": sandbox.url + "/rest-api", "INPUT_TOKEN": TOKEN,
           "INPUT_REPOSITORY": REPOSITORY, "INPUT_TAG_NAME": tag, "INPUT_FILES": files,
           **{f"INPUT_{key.upper()}": value for key, value in inputs.items()}}
    return [sys.executable, "-m", "release_action"], env


def random_file(path: Path, mib: int) -> Path:
    with path.open("wb") as handle:
        for _ in range(mib):
            handle.write(os.urandom(1 << 20))
    return path


def median(values) -> float:
    return statistics.median(list(values))


def image_rows() -> list[tuple[str, str, str, str]]:
    """6. The image: its size, the bytes a pull downloads, and the action's step in a GitHub workflow (run by
    act) pulling the released image from a registry on loopback against building the Dockerfile. The figures
    come from the test that proves it (tests/test_release.py), which rehearses a whole release first."""
    dump = subprocess.run(["bash", "-c", "source scripts/containers/env && env -0"], cwd=ROOT,
                          capture_output=True, text=True).stdout
    env = dict(item.split("=", 1) for item in dump.split("\0") if "=" in item)
    if not shutil.which("buildah", path=env.get("PATH")):
        return [("image", "not measured: run scripts/container-tools", "", "")]
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
                          "tests/test_release.py", "-k", "pulls_the_image"], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    found = re.search(r"^image figures: (.*)$", run.stdout, re.MULTILINE)
    if run.returncode != 0 or not found:
        raise SystemExit(f"the image's measurement failed:\n{run.stdout[-3000:]}")
    figures = json.loads(found.group(1))
    return [
        ("image amd64, MB: size / pulled", f"{figures['size_mb']:.0f} / {figures['pull_mb']:.0f}", "80 (target)", ""),
        ("action step, s: pulled / built", f"{figures['pulled_s']:.1f} / {figures['built_s']:.1f}",
         "5 (target), 4x", f"{figures['built_s'] / figures['pulled_s']:.1f}x"),
    ]


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_argument("--quick", action="store_true", help="200 MiB instead of 1 GiB")
    options.add_argument("--runs", type=int, default=3)
    args = options.parse_args()
    big_mib, runs = (200 if args.quick else 1024), args.runs
    for tool in ("curl", "md5sum", "sha1sum", "sha256sum", "sha512sum"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is needed as a reference; install it.")
    tags = iter(f"t{n}" for n in range(10_000))
    rows: list[tuple[str, str, str, str]] = []
    sandbox = Sandbox([f"t{n}" for n in range(100)])
    try:
        with tempfile.TemporaryDirectory(prefix="bench-") as folder:
            folder = Path(folder)
            big = random_file(folder / "big.bin", big_mib)
            small = random_file(folder / "small.bin", 10)

            # 1. One large file against curl -F to the same endpoint, into the same kind of release.
            curl = ["curl", "-sS", "-f", "-o", "/dev/null", "-H", f"Authorization: token {TOKEN}", "-F",
                    f"files=@{big}",
                    f"{sandbox.url}/rest-api/project/{REPOSITORY}/release/{sandbox.create_release(next(tags))}/file"]
            ours, theirs = [], []
            for _ in range(runs):
                ours.append(measure(*program(sandbox, next(tags), str(big))))
                theirs.append(measure(curl))
            ours_s, curl_s = median(r[1] for r in ours), median(r[1] for r in theirs)
            rows.append((f"one {big_mib} MiB file, wall s", f"{ours_s:.2f}", f"{curl_s:.2f} (curl -F)",
                         f"{ours_s / curl_s:.2f}"))

            # 2. Peak memory does not grow with the file.
            big_rss = max(r[2] for r in ours)
            small_rss = max(measure(*program(sandbox, next(tags), str(small)))[2] for _ in range(runs))
            rows.append((f"peak RSS MB, 10 MiB / {big_mib} MiB", f"{small_rss:.1f} / {big_rss:.1f}",
                         f"{max(r[2] for r in theirs):.1f} (curl)", f"{big_rss / small_rss:.2f}"))

            # 3. Many small files with latency: one at a time against the default parallelism.
            many = folder / "many"
            many.mkdir()
            for n in range(200):
                (many / f"f{n:03}.bin").write_bytes(os.urandom(100 << 10))
            sandbox.control("POST", "/_sandbox/settings", {"latency": 0.05})
            seconds, calls = {}, {}
            for parallel in ("1", "6"):
                before = len(sandbox.control("GET", "/_sandbox/state")["calls"])
                seconds[parallel] = median(
                    measure(*program(sandbox, next(tags), str(many / "*.bin"), parallel=parallel))[1] for _ in range(1))
                calls[parallel] = len(sandbox.control("GET", "/_sandbox/state")["calls"]) - before
            sandbox.control("POST", "/_sandbox/settings", {"latency": 0.0})
            rows.append(("200 x 100 KiB, 50 ms latency, s", f"{seconds['6']:.2f} (parallel 6)",
                         f"{seconds['1']:.2f} (parallel 1)", f"{seconds['1'] / seconds['6']:.2f}x"))
            rows.append(("  API calls for those 200 files", str(calls["6"]), "203 (files + 3)", ""))

            # 4. Four hashes in one read against the four *sum tools one after another.
            sys.path.insert(0, str(ROOT))
            from release_action.artifacts import Artifact

            hash_ours, hash_tools = [], []
            for _ in range(runs):
                started = time.perf_counter()
                Artifact(big, big.name, big.stat().st_size).ensure_digests()
                hash_ours.append(time.perf_counter() - started)
                started = time.perf_counter()
                for tool in ("md5sum", "sha1sum", "sha256sum", "sha512sum"):
                    subprocess.run([tool, str(big)], check=True, capture_output=True)
                hash_tools.append(time.perf_counter() - started)
            rows.append((f"4 hashes of {big_mib} MiB, s", f"{median(hash_ours):.2f} (one read)",
                         f"{median(hash_tools):.2f} (4 tools)", f"{median(hash_ours) / median(hash_tools):.2f}"))
    finally:
        sandbox.stop()

    # 5. Start-up: process start to the first request (a fresh forge each time), and --help.
    firsts = []
    for _ in range(2 * runs):
        fresh = Sandbox(["v1"])
        try:
            start, _, _ = measure(*program(fresh, "v1", "", dry_run="true"))
            firsts.append(fresh.control("GET", "/_sandbox/state")["first_call_at"] - start)
        finally:
            fresh.stop()
    helps = [measure([sys.executable, "-m", "release_action", "--help"])[1] for _ in range(2 * runs)]
    bare = [measure([sys.executable, "-c", "pass"])[1] for _ in range(2 * runs)]
    rows.append(("start to first request, ms", f"{median(firsts) * 1000:.0f}", "300 (target)", ""))
    rows.append(("--help, ms", f"{median(helps) * 1000:.0f}", f"{median(bare) * 1000:.0f} (bare python)", ""))
    rows.extend(image_rows())

    print(f"release-action benchmarks, {time.strftime('%Y-%m-%d')}: {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, {'quick' if args.quick else 'full'}, median of {runs}")
    header = ("case", "this product", "reference", "ratio")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


if __name__ == "__main__":
    main()
