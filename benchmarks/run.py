"""The performance table: this program against its references, side by side, in one run.

    .venv/bin/python benchmarks/run.py            # everything (about 10 minutes; writes 2 GiB to a temp dir)
    .venv/bin/python benchmarks/run.py --quick    # 256 MiB instead of 1 GiB, 3 pairs instead of 5
    .venv/bin/python benchmarks/run.py --signing  # the signing rows alone (about 2 minutes)
    .venv/bin/python benchmarks/run.py --many     # the rows of many files alone (about a minute)

Two servers, each a separate process on loopback:
- the sandbox forge, which does a forge's work: it parses the multipart body, stores the file
  and, for GitFlic, computes the four hashes GitFlic reports; wall times against it include
  that work, as they would against a real server;
- a discarding sink, which only reads the body: the client's ceiling. It is ``benchmarks/sink.go``,
  built into the temp folder when ``go`` is there (Python's ``benchmarks/sink.py`` cannot read as fast
  as a client with a core of its own sends), else ``benchmarks/sink.py``, and the table says which.

The package is first compiled and its manifest's parse cached, as the image has them, so that
start-up is measured as users meet it, not with every module compiled from source.

"limit of a verified upload": what curl's copy and SHA-256, both measured in the same run, allow
at best: on one core their CPU seconds add up (1 GiB / (curl's CPU + SHA-256's CPU)); on two, the
slower of the two alone (curl's rate on the sink, SHA-256's on one core).

Each comparison with curl is the median of interleaved pairs (ours, curl, ours, curl, ...), so
a busy moment on the machine strikes both. Wall times are of whole processes: start-up,
lookups and verification included. "1 core" pins the client (this program or curl) to one
core and the server to the other, as a one-core runner talking to a remote forge; "2 cores"
pins nothing, as a runner with the forge beside it.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
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
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-token"
REPOSITORY = "bench/app"
#: Runs a command as a child and reports its exit code, start, wall time, CPU seconds and peak RSS.
HELPER = """
import json, os, resource, subprocess, sys
cpus = json.loads(sys.argv[2])
if cpus:
    os.sched_setaffinity(0, cpus)
import time
start = time.time()
code = subprocess.run(json.loads(sys.argv[1]), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
wall = time.time() - start
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps([code, start, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024]))
"""
ALL_CORES = sorted(os.sched_getaffinity(0))
#: Where the client and the server run in each setting.
SETTINGS = {"2 cores": (None, None), "1 core": ([ALL_CORES[-1]], [ALL_CORES[0]])}


@dataclass
class Measure:
    start: float
    wall: float
    cpu: float
    peak_mb: float


class Server:
    """A server process (the sandbox or the sink) that printed "... at URL" when ready."""

    def __init__(self, command: list[str]):
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        self.url = self.process.stdout.readline().split(" at ", 1)[1].split()[0]

    def pin(self, cpus: list[int] | None) -> None:
        """Every thread of the server: Go's sink runs its threads before it is pinned."""
        for task in Path(f"/proc/{self.process.pid}/task").iterdir():
            with contextlib.suppress(ProcessLookupError):  # a thread that ended meanwhile
                os.sched_setaffinity(int(task.name), cpus or ALL_CORES)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


class Sandbox(Server):
    """The sandbox forge, driven through its APIs and its control panel."""

    def __init__(self, tags: list[str]):
        super().__init__(
            [
                sys.executable,
                "-m",
                "release_action.sandbox",
                "serve",
                "--port",
                "0",
                "--repository",
                REPOSITORY,
                "--token",
                TOKEN,
                *[f"--tag={tag}" for tag in tags],
            ]
        )

    def call(self, method: str, path: str, body: object = None, auth: str | None = None) -> object:
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = auth
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, method=method, data=data, headers=headers)
        with urllib.request.urlopen(request, timeout=60) as answer:
            return json.loads(answer.read() or b"null")

    def api(self, forge: str) -> str:
        return self.url + ("/rest-api" if forge == "gitflic" else "")

    def create_release(self, tag: str) -> str:
        return self.call(
            "POST", f"/rest-api/project/{REPOSITORY}/release", {"tagName": tag, "title": tag}, f"token {TOKEN}"
        )["id"]

    def empty_storage(self) -> None:
        """Delete every GitFlic file, so that gigabytes of runs do not pile up on disk."""
        path = f"/rest-api/project/{REPOSITORY}/release"
        for page in range(100):
            listing = self.call("GET", f"{path}?page={page}&size=50", auth=f"token {TOKEN}")
            releases = (listing.get("_embedded") or {}).get("releaseTagModelList") or []
            for release in releases:
                ids = [stored["uuid"] for stored in release.get("attachmentFiles") or []]
                if ids:
                    self.call("DELETE", f"{path}/{release['id']}/file", ids, f"token {TOKEN}")
            if page + 1 >= listing["page"]["totalPages"]:
                return

    def calls(self) -> int:
        return len(self.call("GET", "/_sandbox/state")["calls"])


def measure(command: list[str], env: dict[str, str] | None = None, cpus: list[int] | None = None) -> Measure:
    """One command, run from a fresh helper process (pinned to ``cpus``)."""
    out = subprocess.run(
        [sys.executable, "-c", HELPER, json.dumps(command), json.dumps(cpus)],
        env=env or dict(os.environ),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    code, *figures = json.loads(out)
    if code != 0:
        raise SystemExit(f"{' '.join(command[:3])} failed with exit code {code}")
    return Measure(*figures)


def program(api_url: str, tag: str, files: str, forge: str = "gitflic", **inputs: str) -> tuple[list[str], dict]:
    env = {
        **os.environ,
        "INPUT_FORGE": forge,
        "INPUT_API_URL": api_url,
        "INPUT_TOKEN": TOKEN,
        "INPUT_REPOSITORY": REPOSITORY,
        "INPUT_TAG_NAME": tag,
        "INPUT_FILES": files,
        **{f"INPUT_{key.upper()}": value for key, value in inputs.items()},
    }
    return [sys.executable, "-m", "release_action"], env


def curl(url: str, path: Path) -> list[str]:
    return ["curl", "-sS", "-f", "-o", "/dev/null", "-H", f"Authorization: token {TOKEN}", "-F", f"files=@{path}", url]


def random_file(path: Path, mib: int) -> Path:
    with path.open("wb") as handle:
        for _ in range(mib):
            handle.write(os.urandom(1 << 20))
    return path


def median(values) -> float:
    return statistics.median(list(values))


class Table:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str, str]] = []

    def add(self, case: str, ours: str, reference: str, ratio: str = "", target: str = "") -> None:
        self.rows.append((case, ours, reference, ratio, target))

    def print(self) -> None:
        header = ("case", "this product", "reference", "ratio", "target")
        widths = [max(len(row[i]) for row in [header, *self.rows]) for i in range(len(header))]
        for row in [header, *self.rows]:
            print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def pairs(count: int, ours, theirs) -> tuple[list[Measure], list[Measure]]:
    """``count`` interleaved runs of two commands: a busy moment strikes both."""
    a, b = [], []
    for _ in range(count):
        a.append(ours())
        b.append(theirs())
    return a, b


def sink_server(folder: Path, digests: list[str]) -> tuple[Server, str]:
    """The Go sink, built from benchmarks/sink.go, when ``go`` is there; else the Python one; and its name."""
    if shutil.which("go"):
        binary = folder / "sink"
        built = subprocess.run(
            ["go", "build", "-o", str(binary), str(ROOT / "benchmarks" / "sink.go")],
            capture_output=True,
            text=True,
        )
        if built.returncode == 0:
            return Server([str(binary), "--port", "0", *digests]), "Go sink"
        print(f"building benchmarks/sink.go failed, so the Python sink is used:\n{built.stderr}", file=sys.stderr)
    else:
        print("no go command: the Python sink is used, which may be slower than the client", file=sys.stderr)
    return Server([sys.executable, str(ROOT / "benchmarks" / "sink.py"), "--port", "0", *digests]), "Python sink"


def sha256_cpu_per_gib(path: Path) -> float:
    """CPU seconds SHA-256 takes per GiB on one core, hashing the file as the upload reads it (2 MiB pieces)."""
    buffer = memoryview(bytearray(2 << 20))
    hasher = hashlib.sha256()
    with path.open("rb", buffering=0) as handle:
        started = time.process_time()
        while count := handle.readinto(buffer):
            hasher.update(buffer[:count])
        spent = time.process_time() - started
    return spent / (path.stat().st_size / (1 << 30))


def one_file_rows(
    table: Table, sandbox: Sandbox, sink: Server, big: Path, mid: Path, count: int, tags
) -> tuple[float, float]:
    """1-4: one large file against curl -F, on the sink and on the sandbox, on 1 and on 2 cores; returns the
    peak memory of this program and of curl with the large file."""
    gib = big.stat().st_size / (1 << 30)
    sink_release = f"{sink.url}/rest-api/project/{REPOSITORY}/release/"
    sink_id = json.loads(
        urllib.request.urlopen(
            urllib.request.Request(
                sink_release.rstrip("/"), data=json.dumps({"tagName": "sink"}).encode(), method="POST"
            )
        ).read()
    )["id"]
    cpu_rows = []
    sha_cpu = median(sha256_cpu_per_gib(big) for _ in range(3))
    for setting, (client, server) in SETTINGS.items():
        sink.pin(server)
        sandbox.pin(server)
        ours, theirs = pairs(
            count,
            lambda client=client: measure(*program(sink.url + "/rest-api", next(tags), str(big)), cpus=client),
            lambda client=client: measure(curl(sink_release + sink_id + "/file", big), cpus=client),
        )
        size_mb = big.stat().st_size / 1e6
        rate, curl_rate = median(size_mb / m.wall for m in ours), median(size_mb / m.wall for m in theirs)
        table.add(
            f"sink, {big.stat().st_size >> 20} MiB, MB/s, {setting}",
            f"{rate:.0f}",
            f"{curl_rate:.0f} (curl -F)",
            f"{rate / curl_rate:.2f}",
            "≥ 800 MB/s" if setting == "2 cores" else "",
        )
        curl_cpu = median(m.cpu for m in theirs) / gib
        if setting == "1 core":
            limit, how = size_mb / gib / (curl_cpu + sha_cpu), "curl's CPU + SHA-256's"
        else:
            limit, how = min(curl_rate, size_mb / gib / sha_cpu), "slower of curl, SHA-256"
        table.add(
            f"  of the limit of a verified upload, {setting}",
            f"{rate:.0f}",
            f"{limit:.0f} ({how})",
            f"{rate / limit:.2f}",
            "≥ 0.90",
        )
        table.add(
            f"  CPU s per GiB on the sink, {setting}",
            f"{median(m.cpu for m in ours) / gib:.2f}",
            f"{curl_cpu + sha_cpu:.2f} (curl {curl_cpu:.2f} + SHA-256 {sha_cpu:.2f})",
            f"{median(m.cpu for m in ours) / gib / (curl_cpu + sha_cpu):.2f}x",
            "≤ 1.10x",
        )
        for path in dict.fromkeys((big, mid)):  # one file with --quick, where both are 256 MiB
            target = "≤ 1.05x" if path.stat().st_size <= 256 << 20 else "≤ 1.00x"
            release = sandbox.create_release(next(tags))
            url = f"{sandbox.api('gitflic')}/project/{REPOSITORY}/release/{release}/file"
            ours_s, theirs_s = pairs(
                count,
                lambda path=path, client=client: measure(
                    *program(sandbox.api("gitflic"), next(tags), str(path)), cpus=client
                ),
                lambda url=url, path=path, client=client: measure(curl(url, path), cpus=client),
            )
            sandbox.empty_storage()
            wall, curl_wall = median(m.wall for m in ours_s), median(m.wall for m in theirs_s)
            ratio = median(o.wall / t.wall for o, t in zip(ours_s, theirs_s, strict=True))
            table.add(
                f"sandbox, one {path.stat().st_size >> 20} MiB file, wall s, {setting}",
                f"{wall:.2f}",
                f"{curl_wall:.2f} (curl -F)",
                f"{ratio:.2f}x",
                target,
            )
            if path is big:
                cpu_rows.append(
                    (
                        setting,
                        median(m.cpu for m in ours_s) / gib,
                        median(m.cpu for m in theirs_s) / gib,
                        max(m.peak_mb for m in ours_s),
                        max(m.peak_mb for m in theirs_s),
                    )
                )
    sink.pin(None)
    sandbox.pin(None)
    for setting, cpu, curl_cpu, _, _ in cpu_rows:
        table.add(
            f"CPU s per GiB (user + system), {setting}",
            f"{cpu:.2f}",
            f"{curl_cpu:.2f} (curl -F)",
            f"{cpu / curl_cpu:.1f}x",
            "≤ 1.5 s",
        )
    table.rows.append(("", "", "", "", ""))
    return cpu_rows[0][3], cpu_rows[0][4]


def memory_row(
    table: Table, sandbox: Sandbox, small: Path, big_peak: float, curl_peak: float, big_mib: int, count: int, tags
) -> None:
    """5. Peak memory does not grow with the file."""
    small_peak = max(measure(*program(sandbox.api("gitflic"), next(tags), str(small))).peak_mb for _ in range(count))
    table.add(
        f"peak RSS MB, 10 MiB / {big_mib} MiB",
        f"{small_peak:.1f} / {big_peak:.1f}",
        f"{curl_peak:.1f} (curl)",
        f"{big_peak / small_peak:.2f}",
        "≤ 64 MB, within 5%",
    )


def sourcecraft_row(table: Table, sandbox: Sandbox, folder: Path, count: int, tags) -> None:
    """6. SourceCraft verifies by downloading every file; the same files on GitFlic need no download."""
    files = folder / "sc"
    files.mkdir()
    for n in range(10):
        random_file(files / f"part{n}.bin", 50)
    pattern = str(files / "*.bin")
    sc, gf = pairs(
        count,
        lambda: measure(*program(sandbox.api("sourcecraft"), next(tags), pattern, "sourcecraft")),
        lambda: measure(*program(sandbox.api("gitflic"), next(tags), pattern)),
    )
    sandbox.empty_storage()
    ratio = median(s.wall / g.wall for s, g in zip(sc, gf, strict=True))
    table.add(
        "10 x 50 MiB with verification, s",
        f"{median(m.wall for m in sc):.2f} (SourceCraft)",
        f"{median(m.wall for m in gf):.2f} (GitFlic)",
        f"{ratio:.2f}x",
        "≤ 1.3x",
    )
    table.add(
        "  peak RSS MB of those runs",
        f"{max(m.peak_mb for m in sc):.1f} (SourceCraft)",
        f"{max(m.peak_mb for m in gf):.1f} (GitFlic)",
        "",
        "flat: downloads stream",
    )


def many_files_rows(table: Table, sandbox: Sandbox, folder: Path, tags) -> None:
    """7. A release of 1,000 files of 1 KiB on every forge: the API requests the sandbox counted, and the
    time. Then many small files with latency, one at a time against the default parallelism, on a forge
    that takes one file a request (Gitea), and on GitFlic, which takes ten."""
    # Each forge's API in the sandbox (release_action.sandbox.server.Sandbox.api_url); GitVerse makes a
    # release only from a full commit SHA.
    apis = {"gitflic": "/rest-api", "sourcecraft": "", "gitea": "/api/v1", "gitverse": "/gitverse"}
    extra = {"gitverse": {"target_branch": "0123456789abcdef0123456789abcdef01234567"}}

    def run(forge: str, files: Path, tag: str | None = None, **inputs: str) -> tuple[int, float]:
        before = sandbox.calls()
        command = program(sandbox.url + apis[forge], tag or next(tags), str(files / "*.bin"), forge, **inputs)
        wall = measure(*command).wall
        return sandbox.calls() - before, wall

    thousand = folder / "thousand"
    thousand.mkdir()
    for n in range(1000):
        (thousand / f"f{n:04}.bin").write_bytes(os.urandom(1 << 10))
    cases = [(forge, forge, {}) for forge in apis]
    cases.append(("gitflic keeping 1 file of a request", "gitflic", {"gitflic_first_file_only": True}))
    for case, forge, settings in cases:
        sandbox.call("POST", "/_sandbox/settings", settings or {"gitflic_first_file_only": False})
        requests, wall = run(forge, thousand, **extra.get(forge, {}))
        table.add(
            f"1000 x 1 KiB, {case}: requests, s",
            f"{requests}, {wall:.1f} s",
            "1004 (one file a request, + 4)" if forge == "gitflic" else "",
            f"{1004 / requests:.1f}x fewer" if forge == "gitflic" else "",
            "≤ 500 (an hour's)" if case == "gitflic" else "",
        )
    sandbox.call("POST", "/_sandbox/settings", {"gitflic_first_file_only": False})
    # A rerun with every file rebuilt: each is uploaded again and its older copy removed.
    tag = next(tags)
    run("gitflic", thousand, tag)
    for path in thousand.iterdir():
        path.write_bytes(os.urandom(1 << 10))
    requests, wall = run("gitflic", thousand, tag)
    table.add(
        "  the same 1000 rebuilt, a rerun, gitflic: requests, s",
        f"{requests}, {wall:.1f} s",
        "2003 (a file and a removal a request)",
        f"{2003 / requests:.1f}x fewer",
        "≤ 500 (an hour's)",
    )
    sandbox.empty_storage()

    many = folder / "many"
    many.mkdir()
    for n in range(200):
        (many / f"f{n:03}.bin").write_bytes(os.urandom(100 << 10))
    sandbox.call("POST", "/_sandbox/settings", {"latency": 0.05})
    seconds, calls = {}, {}
    for parallel in ("1", "6"):
        calls[parallel], seconds[parallel] = run("gitea", many, parallel=parallel)
    batched_calls, batched = run("gitflic", many)
    sandbox.call("POST", "/_sandbox/settings", {"latency": 0.0})
    sandbox.empty_storage()
    table.add(
        "200 x 100 KiB, 50 ms latency, Gitea, s",
        f"{seconds['6']:.2f} (parallel 6)",
        f"{seconds['1']:.2f} (parallel 1)",
        f"{seconds['1'] / seconds['6']:.2f}x faster",
        "≥ 5x",
    )
    table.add("  API calls for those 200 files", str(calls["6"]), "205 (files + 5)")
    table.add("  the same on GitFlic: s, API calls", f"{batched:.2f}, {batched_calls}", "24 (20 uploads of 10 + 4)")


def many_files_only() -> None:
    """``--many``: rows 7 alone, without the gigabyte files the other rows write."""
    table = Table()
    prepare_package()
    with tempfile.TemporaryDirectory(prefix="bench-") as folder:
        sandbox = Sandbox([f"t{n}" for n in range(20)])
        try:
            many_files_rows(table, sandbox, Path(folder), iter(f"t{n}" for n in range(20)))
        finally:
            sandbox.stop()
    print(
        f"release-action benchmarks, {time.strftime('%Y-%m-%d')}: {platform.machine()}, {os.cpu_count()} cores"
        f" ({cpu_model()}), Python {platform.python_version()}, the rows of many files only (--many)"
    )
    table.print()


def hash_row(table: Table, big: Path, count: int) -> None:
    """8. The verification hash alone, against sha256sum."""
    sys.path.insert(0, str(ROOT))
    from release_action.artifacts import local_file

    ours, tool = [], []
    for _ in range(count):
        artifact = local_file(big, big.name)
        started = time.perf_counter()
        artifact.digest()
        ours.append(time.perf_counter() - started)
        started = time.perf_counter()
        subprocess.run(["sha256sum", str(big)], check=True, capture_output=True)
        tool.append(time.perf_counter() - started)
    table.add(
        f"SHA-256 of {big.stat().st_size >> 20} MiB, s",
        f"{median(ours):.2f}",
        f"{median(tool):.2f} (sha256sum)",
        f"{median(ours) / median(tool):.2f}",
    )


#: What a GitFlic run imports before its first request, and the HTTP stack alone within it.
RUN_IMPORTS = "release_action.cli, release_action.inputs, release_action.publish, release_action.forges.gitflic"
HTTP_IMPORTS = "requests"


def import_ms(modules: str) -> float:
    """Milliseconds a fresh interpreter takes to import ``modules``: the least of a few tries, as noise only adds."""
    code = f"import time; started = time.perf_counter(); import {modules}; print(time.perf_counter() - started)"
    return 1000 * min(
        float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
        for _ in range(5)
    )


def startup_rows(table: Table, count: int) -> None:
    """9. Start-up: process start to the first request (a fresh forge each time), its imports, and --help."""
    firsts = []
    for _ in range(count):
        fresh = Sandbox(["v1"])
        try:
            started = measure(*program(fresh.api("gitflic"), "v1", "", dry_run="true")).start
            firsts.append(fresh.call("GET", "/_sandbox/state")["first_call_at"] - started)
        finally:
            fresh.stop()
    helps = [measure([sys.executable, "-m", "release_action", "--help"]).wall for _ in range(count)]
    bare = [measure([sys.executable, "-c", "pass"]).wall for _ in range(count)]
    table.add("start to first request, ms", f"{median(firsts) * 1000:.0f}", "", "", "≤ 100 ms")
    imports, http = import_ms(RUN_IMPORTS), import_ms(HTTP_IMPORTS)
    table.add("  of which imports, ms", f"{imports:.0f}", f"{http:.0f} (requests alone)")
    table.add("--help, ms", f"{median(helps) * 1000:.0f}", f"{median(bare) * 1000:.0f} (bare python)")


def signing_keys(folder: Path) -> dict[str, str]:
    """An OpenPGP key and a minisign key, neither protected by a passphrase: a protected one adds its
    derivation once per run (for minisign, about 4 s and 1 GiB), whatever is signed."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import pysequoia
    subprocess.run(
        ["minisign", "-G", "-W", "-f", "-p", str(folder / "m.pub"), "-s", str(folder / "m.key")],
        check=True,
        capture_output=True,
    )
    return {
        "openpgp": str(pysequoia.Tsk.generate("Bench <bench@example.org>")),
        "minisign": (folder / "m.key").read_text(),
    }


def signing_rows(table: Table, sandbox: Sandbox, folder: Path, keys: dict[str, str], count: int, tags) -> None:
    """10. Signing: the CPU a run spends per signed file (sign_files: all on 20 files of 1 MiB, against the same
    run unsigned), for an OpenPGP key and a minisign key, both signing in the program's process."""
    files = folder / "signed"
    files.mkdir()
    for n in range(20):
        (files / f"f{n:02}.bin").write_bytes(os.urandom(1 << 20))
    signed_files = 20 + 1  # every file and the checksums file
    for label, key in keys.items():

        def run(**signing: str) -> Measure:
            return measure(
                *program(sandbox.api("gitflic"), next(tags), str(files / "*"), checksums="SHA256SUMS", **signing)
            )

        plain, signed = pairs(count, run, lambda key=key: run(signing_key=key, sign_files="all"))
        per_file = (median(m.cpu for m in signed) - median(m.cpu for m in plain)) / signed_files
        table.add(
            f"CPU ms per signed 1 MiB file, {label}",
            f"{per_file * 1000:.1f}",
            f"{median(m.cpu for m in plain):.2f} s unsigned run",
            "",
            "in process",
        )
        sandbox.empty_storage()


def signing_memory_rows(
    table: Table, sandbox: Sandbox, small: Path, big: Path, keys: dict[str, str], count: int, tags
) -> None:
    """11. Peak memory of a run that signs what it publishes (sign_files: all), a small file and a large one, against
    the same runs unsigned: signing reads the file in pieces, as the upload does."""
    sizes = f"{small.stat().st_size >> 20}/{big.stat().st_size >> 20} MiB"

    def peaks(**signing: str) -> list[float]:
        found = []
        for path in (small, big):
            found.append(
                max(
                    measure(
                        *program(sandbox.api("gitflic"), next(tags), str(path), checksums="SHA256SUMS", **signing)
                    ).peak_mb
                    for _ in range(count)
                )
            )
            sandbox.empty_storage()
        return found

    plain = peaks()
    for label, key in keys.items():
        signed = peaks(signing_key=key, sign_files="all")
        table.add(
            f"signed peak RSS MB, {label}, {sizes}",
            f"{signed[0]:.1f} / {signed[1]:.1f}",
            f"{plain[0]:.1f} / {plain[1]:.1f} (unsigned)",
            f"{signed[1] / signed[0]:.2f}",
            "flat: within 5%",
        )


def image_rows(table: Table) -> None:
    """12. The image: its size, the bytes a pull downloads, and the action's step in a GitHub workflow (run by
    act) pulling the released image from a registry on loopback against building the Dockerfile. The figures
    come from the test that proves it (tests/test_release.py), which rehearses a whole release first."""
    dump = subprocess.run(
        ["bash", "-c", "source scripts/containers/env && env -0"], cwd=ROOT, capture_output=True, text=True
    ).stdout
    env = dict(item.split("=", 1) for item in dump.split("\0") if "=" in item)
    if not shutil.which("buildah", path=env.get("PATH")):
        table.add("image", "not measured: run scripts/container-tools", "")
        return
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-s",
            "-p",
            "no:cacheprovider",
            "tests/test_release.py",
            "-k",
            "pulls_the_image",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    found = re.search(r"^image figures: (.*)$", run.stdout, re.MULTILINE)
    if run.returncode != 0 or not found:
        print(f"the image's measurement failed:\n{run.stdout[-3000:]}", file=sys.stderr)
        table.add("image", "not measured: tests/test_release.py failed (its output is above)", "")
        return
    figures = json.loads(found.group(1))
    table.add(
        "image amd64, MB: size / pulled", f"{figures['size_mb']:.0f} / {figures['pull_mb']:.0f}", "", "", "≤ 80 MB"
    )
    table.add(
        "action step, s: pulled / built",
        f"{figures['pulled_s']:.1f} / {figures['built_s']:.1f}",
        "",
        f"{figures['built_s'] / figures['pulled_s']:.1f}x",
        "≤ 5 s, ≥ 4x",
    )


def prepare_package() -> None:
    """Compile the package and cache its manifest's parse, as the image's build does: with
    PYTHONDONTWRITEBYTECODE (set here, and in the image) a fresh checkout would otherwise compile
    every module from source on every run."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "release_action")], check=True)
    subprocess.run(
        [sys.executable, "-c", "from release_action import manifest; manifest.load()"],
        check=True,
        env={key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"},
    )


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown processor"


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_argument("--quick", action="store_true", help="256 MiB instead of 1 GiB, 3 pairs instead of 5")
    options.add_argument("--pairs", type=int, help="interleaved pairs per comparison (default 5, or 3 with --quick)")
    options.add_argument(
        "--no-image", action="store_true", help="skip the image rows (they rehearse a release with act)"
    )
    options.add_argument("--signing", action="store_true", help="only the signing rows (10 and 11)")
    options.add_argument("--many", action="store_true", help="only the rows of many files (7)")
    args = options.parse_args()
    if args.many:
        return many_files_only()
    big_mib, count = (256, 3) if args.quick else (1024, 5)
    count = args.pairs or count
    for tool in ("curl", "sha256sum"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is needed as a reference; install it.")
    tags = iter(f"t{n}" for n in range(300))
    table = Table()
    sink_name = "no sink"
    prepare_package()
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory(prefix="bench-") as folder:
        folder = Path(folder)
        big = random_file(folder / "big.bin", big_mib)
        small = random_file(folder / "small.bin", 10)
        sandbox = Sandbox([f"t{n}" for n in range(300)])
        stack.callback(sandbox.stop)
        if not args.signing:
            mid = random_file(folder / "mid.bin", 256) if big_mib != 256 else big
            digests = [f"--sha256={path.name}={hashlib.sha256(path.read_bytes()).hexdigest()}" for path in (big, mid)]
            sink, sink_name = sink_server(folder, digests)
            stack.callback(sink.stop)
            big_peak, curl_peak = one_file_rows(table, sandbox, sink, big, mid, count, tags)
            memory_row(table, sandbox, small, big_peak, curl_peak, big_mib, count, tags)
            sourcecraft_row(table, sandbox, folder, count, tags)
            many_files_rows(table, sandbox, folder, tags)
            hash_row(table, big, count)
        keys = signing_keys(folder)
        signing_rows(table, sandbox, folder, keys, count, tags)
        signing_memory_rows(table, sandbox, small, big, keys, count, tags)
    if not args.signing:
        startup_rows(table, 2 * count)
    if not (args.no_image or args.signing):
        image_rows(table)

    print(
        f"release-action benchmarks, {time.strftime('%Y-%m-%d')}: {platform.machine()}, {os.cpu_count()} cores"
        f" ({cpu_model()}), Python {platform.python_version()}, "
        f"{'quick' if args.quick else 'full'}, medians of {count} interleaved pairs"
    )
    print(
        f"servers: the sandbox forge (parses, stores, hashes as GitFlic does) and a discarding sink ({sink_name});"
        " '1 core': client and server pinned to one core each"
    )
    table.print()


if __name__ == "__main__":
    main()
