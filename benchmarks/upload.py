"""One large upload: this program against ``curl -F`` to the same sandbox forge.

Prints wall time and peak RSS (median of several runs) for each, and their
ratio. The sandbox runs in its own process, as a forge would; both clients
upload the same file to it over loopback. The program's figures include
everything it does: finding the release, creating it, streaming the file,
hashing it four ways in the same read, and verifying the answer.

    .venv/bin/python benchmarks/upload.py [--mib 200] [--runs 3]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

TOKEN = "bench-token"
REPOSITORY = "bench/app"


def measured(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS in MB of one command, run in a fresh helper so its RSS is its own."""
    helper = (
        "import resource, subprocess, sys, time, json\n"
        "start = time.perf_counter()\n"
        "code = subprocess.run(json.loads(sys.argv[1]), stdout=subprocess.DEVNULL).returncode\n"
        "seconds = time.perf_counter() - start\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
        "print(json.dumps([code, seconds, peak]))\n"
    )
    out = subprocess.run([sys.executable, "-c", helper, json.dumps(command)], env=env, capture_output=True, text=True,
                         check=True)
    code, seconds, peak = json.loads(out.stdout)
    if code != 0:
        raise SystemExit(f"{command[0]} failed with exit code {code}")
    return seconds, peak


def start_sandbox(tags: list[str]) -> tuple[subprocess.Popen, str]:
    command = [sys.executable, "-m", "release_action.sandbox", "serve", "--port", "0",
               "--repository", REPOSITORY, "--token", TOKEN]
    for tag in tags:
        command += ["--tag", tag]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    first_line = server.stdout.readline()
    url = first_line.split(" at ", 1)[1].split(" ", 1)[0]
    return server, url


def api(url: str, method: str, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(
        url + "/rest-api" + path, method=method, data=json.dumps(body).encode() if body else None,
        headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read() or b"null")


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_argument("--mib", type=int, default=200)
    options.add_argument("--runs", type=int, default=3)
    args = options.parse_args()
    if shutil.which("curl") is None:
        raise SystemExit("curl is needed as the reference; install it (apt-get install curl).")

    tags = [f"bench-{n}" for n in range(args.runs)] + ["curl"]
    server, url = start_sandbox(tags)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-") as folder:
            artifact = Path(folder) / "app.bin"
            with artifact.open("wb") as handle:
                for _ in range(args.mib):
                    handle.write(os.urandom(1 << 20))
            curl_release = api(url, "POST", f"/project/{REPOSITORY}/release", {"tagName": "curl", "title": "curl"})
            curl = ["curl", "-sS", "-f", "-o", "/dev/null", "-H", f"Authorization: token {TOKEN}",
                    "-F", f"files=@{artifact}", f"{url}/rest-api/project/{REPOSITORY}/release/{curl_release['id']}/file"]
            ours: list[tuple[float, float]] = []
            theirs: list[tuple[float, float]] = []
            for tag in tags[:-1]:
                env = {**os.environ, "INPUT_API_URL": url + "/rest-api", "INPUT_TOKEN": TOKEN,
                       "INPUT_REPOSITORY": REPOSITORY, "INPUT_TAG_NAME": tag, "INPUT_FILES": str(artifact)}
                ours.append(measured([sys.executable, "-m", "release_action"], env))
                theirs.append(measured(curl, dict(os.environ)))
    finally:
        server.terminate()
        server.wait(timeout=30)

    our_time = statistics.median(s for s, _ in ours)
    curl_time = statistics.median(s for s, _ in theirs)
    our_rss = max(m for _, m in ours)
    curl_rss = max(m for _, m in theirs)
    print(f"One {args.mib} MiB file, median of {args.runs} runs, {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}")
    print(f"{'case':<24}{'release-action':>16}{'curl -F':>12}{'ratio':>8}")
    print(f"{'wall time, s':<24}{our_time:>16.2f}{curl_time:>12.2f}{our_time / curl_time:>8.2f}")
    print(f"{'peak RSS, MB':<24}{our_rss:>16.1f}{curl_rss:>12.1f}{our_rss / curl_rss:>8.2f}")
    print(f"{'throughput, MB/s':<24}{args.mib * 1.048576 / our_time:>16.1f}{args.mib * 1.048576 / curl_time:>12.1f}")


if __name__ == "__main__":
    main()
