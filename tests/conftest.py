"""The test harness: a sandbox forge per test, build outputs on disk, and the real program.

``publish(...)`` runs the program's own ``main`` in this process against the
sandbox over real HTTP, with inputs given as ``INPUT_*`` variables, the way
GitHub and ``docker run`` give them. Every run is checked for the token in
anything it wrote, and every sandbox a test starts is held to the forges'
API descriptions (``contract``).
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from release_action.cli import main
from release_action.sandbox import contract as api_contract
from release_action.sandbox.server import Sandbox

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "gf-token-7d1c9a0b5e"
REPOSITORY = "acme/tool"
TAGS = ["v1.0.0", "v1.1.0", "v2.0.0"]
#: Every forge the program serves; tests that hold for all of them take each in turn.
FORGE_NAMES = ("gitflic", "sourcecraft", "gitea", "gitverse")
#: Where each step's request goes: (method, path pattern), per forge.
STEPS = {
    "gitflic": {
        "list": ("GET", r"/release$"),
        "create": ("POST", r"/release$"),
        "update": ("PUT", r"/release/[^/]+$"),
        "upload": ("POST", r"/file$"),
        "delete": ("DELETE", r"/file$"),
    },
    "sourcecraft": {
        "list": ("GET", r"/releases/tag/[^/]+$"),
        "create": ("POST", r"/releases$"),
        "update": ("PATCH", r"/releases/tag/[^/]+$"),
        "upload": ("POST", r"/attachments$"),
        "publish": ("POST", r"/publish$"),
    },
    # The first PATCH of a run that changes nothing else publishes the draft.
    "gitea": {
        "list": ("GET", r"/releases/tags/[^/]+$"),
        "tag": ("GET", r"/repos/[^/]+/[^/]+/tags/[^/]+$"),
        "create": ("POST", r"/releases$"),
        "update": ("PATCH", r"/releases/[0-9]+$"),
        "upload": ("POST", r"/assets$"),
        "delete": ("DELETE", r"/assets/[0-9]+$"),
        "publish": ("PATCH", r"/releases/[0-9]+$"),
    },
}
STEPS["gitverse"] = {step: where for step, where in STEPS["gitea"].items() if step != "tag"}
#: GitVerse makes a release only from a full commit SHA: what its CI gives a run started by a tag.
GITVERSE_SHA = "5" * 40


def ci_context(forge_name: str, tag: str) -> dict[str, str]:
    """The CI variables a run of ``forge_name``'s own CI, started by ``tag``, has, where the program
    needs them (GitVerse: the tag's commit)."""
    if forge_name != "gitverse":
        return {}
    return {
        "GITHUB_SERVER_URL": "https://gitverse.ru",
        "GITHUB_REF_TYPE": "tag",
        "GITHUB_REF_NAME": tag,
        "GITHUB_SHA": GITVERSE_SHA,
    }


@dataclass
class Run:
    code: int
    log: str
    files: dict[str, str] = field(default_factory=dict)

    @property
    def json(self) -> dict:
        return json.loads(self.files["json"])

    def statuses(self) -> dict[str, str]:
        return {asset["name"]: asset["status"] for asset in self.json["assets"]}


#: What the contract check cost this session: exchanges checked, and seconds spent checking them.
CONTRACT_COST = {"exchanges": 0, "seconds": 0.0}


@pytest.fixture(autouse=True)
def sandboxes(monkeypatch) -> list[Sandbox]:
    """Every sandbox forge this test starts, for the checks below."""
    started: list[Sandbox] = []
    start = Sandbox.start

    def recorded_start(sandbox: Sandbox) -> Sandbox:
        started.append(sandbox)
        return start(sandbox)

    monkeypatch.setattr(Sandbox, "start", recorded_start)
    return started


@pytest.fixture(autouse=True)
def contract(sandboxes):
    """Every request the program sent to a sandbox this test started, and every answer, checked
    against the forge's API description when the test ends (release_action/sandbox/contract.py)."""
    yield sandboxes
    began = time.perf_counter()
    exchanges = [exchange for sandbox in sandboxes for exchange in sandbox.exchanges()]
    problems = api_contract.problems(exchanges)
    CONTRACT_COST["exchanges"] += len(exchanges)
    CONTRACT_COST["seconds"] += time.perf_counter() - began
    if problems:
        pytest.fail(
            "the contract with the forges' API descriptions is broken:\n  " + "\n  ".join(problems[:20]), pytrace=False
        )


@pytest.fixture(autouse=True)
def credentials(sandboxes):
    """Every credential any request carried to a sandbox this test started, on either of its origins,
    checked when the test ends: it reached only the origin it belongs to (the sandbox that issued it),
    never the other origin, where hostile download links lead, nor another sandbox."""
    yield
    problems = credential_problems(sandboxes)
    if problems:
        pytest.fail("a credential went where it does not belong:\n  " + "\n  ".join(problems[:20]), pytrace=False)


def credential_problems(sandboxes: list[Sandbox]) -> list[str]:
    issued = {sandbox.url: set(sandbox.state.tokens) | sandbox.state.job_tokens for sandbox in sandboxes}
    everyone = set().union(*issued.values()) if issued else set()
    problems = []
    for sandbox in sandboxes:
        for where, header in list(sandbox.state.credentials):
            shown = header.split(" ", 1)[0] + " ***"
            if where == sandbox.foreign_url:
                problems.append(f"{shown} reached {where}, the sandbox's other origin (a foreign download link)")
            elif any(token in header for token in everyone - issued[sandbox.url]):
                problems.append(f"{shown} of another sandbox reached {where}")
    return problems


#: What the racing model checked this session (test_settlement.py): schedules, and seconds spent.
MODEL_COST = {"schedules": 0, "seconds": 0.0}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own, which reads the groups
def pytest_collection_modifyitems(items) -> None:
    """scripts/test runs the suite on several pytest-xdist workers (most tests wait on sockets and timers,
    not on a core). The container tests share one image, one registry and the container tools, so they
    run one after another on one worker, beside the rest (``--dist loadgroup``)."""
    for item in items:
        # A test already in a group keeps it: test_package's container tests share its built package.
        if item.get_closest_marker("container") and not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group("container"))


def pytest_sessionfinish(session) -> None:
    """A pytest-xdist worker hands its costs to the main process, which prints the sums."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["costs"] = {"contract": CONTRACT_COST, "model": MODEL_COST}


def pytest_testnodedown(node, error) -> None:
    costs = getattr(node, "workeroutput", {}).get("costs", {})
    for mine, theirs in ((CONTRACT_COST, costs.get("contract", {})), (MODEL_COST, costs.get("model", {}))):
        for key, value in theirs.items():
            mine[key] += value


def pytest_terminal_summary(terminalreporter) -> None:
    """The contract check's and the racing model's cost, as figures (these machines are too noisy for a
    timed test)."""
    if CONTRACT_COST["exchanges"]:
        terminalreporter.write_line(
            f"contract check: {CONTRACT_COST['exchanges']} requests and answers held to the forges' API descriptions"
            f" in {CONTRACT_COST['seconds']:.1f} s"
        )
    if MODEL_COST["schedules"]:
        terminalreporter.write_line(
            f"racing model: {MODEL_COST['schedules']:,} schedules of racing jobs, every interleaving, keep the"
            f" promise, checked in {MODEL_COST['seconds']:.1f} s"
        )


@pytest.fixture
def forge():
    with Sandbox() as sandbox:
        sandbox.add_project(REPOSITORY, TAGS, TOKEN)
        yield sandbox


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    folder = tmp_path / "dist"
    folder.mkdir()
    (folder / "tool-linux-amd64.tar.gz").write_bytes(os.urandom(300_000))
    (folder / "tool-windows-amd64.zip").write_bytes(os.urandom(200_000))
    (folder / "checksums.txt").write_text("abc  tool\n")
    return folder


@pytest.fixture
def publish(forge: Sandbox, dist: Path, tmp_path: Path, capsys):
    """Run the program; keyword arguments are inputs (``tag_name="v1"``), ``env`` adds raw variables."""

    def run(*argv: str, env: dict[str, str] | None = None, **inputs: str) -> Run:
        out = tmp_path / "out"
        out.mkdir(exist_ok=True)
        paths = {
            "json": out / "outputs.json",
            "dotenv": out / "outputs.env",
            "github_output": out / "github_output",
            "summary": out / "summary.md",
        }
        for path in paths.values():
            path.unlink(missing_ok=True)
        defaults = {
            # An unknown forge (an input error the program names) is given GitFlic's address.
            "api_url": forge.api_url(inputs.get("forge") if inputs.get("forge") in FORGE_NAMES else "gitflic"),
            "token": TOKEN,
            "repository": REPOSITORY,
            "tag_name": "v1.0.0",
            "files": "*",
            "working_directory": str(dist),
            "json_file": str(paths["json"]),
            "dotenv_file": str(paths["dotenv"]),
            "retry_wait_seconds": "0.05",
            "timeout_seconds": "10",
        }
        environ = {f"INPUT_{k.upper()}": v for k, v in {**defaults, **inputs}.items()}
        environ.update(
            GITHUB_ACTIONS="true", GITHUB_OUTPUT=str(paths["github_output"]), GITHUB_STEP_SUMMARY=str(paths["summary"])
        )
        environ.update(ci_context(inputs.get("forge", ""), {**defaults, **inputs}["tag_name"]))
        environ.update(env or {})
        code = main(list(argv), environ)
        captured = capsys.readouterr()
        log = captured.out + captured.err
        files = {name: path.read_text() for name, path in paths.items() if path.exists()}
        assert_no_token(log, *files.values())
        return Run(code, log, files)

    return run


def assert_no_token(*texts: str, token: str = TOKEN) -> None:
    """Only GitHub's own masking command may carry the token."""
    for text in texts:
        for line in text.splitlines():
            if not line.startswith("::add-mask::"):
                assert token not in line, f"the token leaked into: {line!r}"


def stored(forge: Sandbox, tag: str = "v1.0.0") -> dict[str, list[str]]:
    """name -> sha256 of every copy stored in the release for ``tag``."""
    releases = [r for r in forge.releases(REPOSITORY) if r.tag == tag]
    assert len(releases) == 1, f"expected one release for {tag}, found {len(releases)}"
    copies: dict[str, list[str]] = {}
    for f in releases[0].files:
        copies.setdefault(f.name, []).append(f.digests["sha256"])
    return copies


def program_block(text: str) -> str:
    """The block body_mode append and prepend write: the end marker carries the first 16 hex digits of
    the SHA-256 of the text between (line endings and white space at line ends aside)."""
    import hashlib

    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    fingerprint = hashlib.sha256("\n".join(lines).strip("\n").encode()).hexdigest()[:16]
    return f"<!-- release-action:begin -->\n{text}\n<!-- release-action:end {fingerprint} -->"


def local_sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_program(env: dict[str, str], *argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The program as CI starts it: a separate process."""
    return subprocess.run(
        [sys.executable, "-m", "release_action", *argv],
        env={"PATH": os.environ.get("PATH", ""), **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="session")
def tools() -> dict[str, str]:
    """The environment that container and real-server commands need, with every tool installed."""
    subprocess.run([str(ROOT / "scripts" / "container-tools")], check=True, cwd=ROOT, timeout=1800)
    dump = subprocess.run(
        ["bash", "-c", "source scripts/containers/env && env -0"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    env = dict(item.split("=", 1) for item in dump.split("\0") if "=" in item)
    for tool in (
        "buildah",
        "podman",
        "act",
        "gitlab-ci-local",
        "hadolint",
        "check-jsonschema",
        "node",
        "go",
        "javac",
        "qemu-aarch64-static",
        env["REGISTRY"],
    ):
        assert shutil.which(tool, path=env["PATH"]), f"{tool} is not installed: scripts/container-tools failed"
    return env


def download_release(forge: Sandbox, forge_name: str, folder: Path, tag: str = "v1.0.0") -> list[str]:
    """Every file of the release for ``tag``, fetched over HTTP the way each forge serves it; their names."""
    import requests

    [release] = [r for r in forge.releases(REPOSITORY) if r.tag == tag]
    auth = {"Authorization": f"token {TOKEN}" if forge_name in ("gitflic", "gitea") else f"Bearer {TOKEN}"}
    if forge_name == "gitverse":
        auth["Accept"] = "application/vnd.gitverse.object+json;version=1"
    if forge_name in ("gitea", "gitverse"):  # the release's assets, each with its browser_download_url
        by_tag = requests.get(
            f"{forge.api_url(forge_name)}/repos/{REPOSITORY}/releases/tags/{tag}", headers=auth, timeout=30
        ).json()
        links = {asset["uuid"]: asset["browser_download_url"] for asset in by_tag["assets"]}
    for stored in release.files:
        if forge_name == "gitflic":
            url = f"{forge.api_url('gitflic')}/project/{REPOSITORY}/release/{release.id}/file/{stored.id}"
        elif forge_name in ("gitea", "gitverse"):
            url = links[stored.id]
            if forge_name == "gitea" and not url.startswith(forge.url + "/"):
                url = f"{forge.url}/attachments/{stored.id}"  # a link drawn to lead elsewhere: the copy by its uuid
        else:  # details first, with a short-lived link to the stored bytes
            details = f"{forge.api_url('sourcecraft')}/repos/{REPOSITORY}/releases/tag/{tag}/attachments/{stored.id}"
            url = requests.get(details, headers=auth, timeout=30).json()["url"]
        # As a careful downloader: the token only to the forge's own origin (the credential check holds tests too).
        answer = requests.get(url, headers=auth if url.startswith(forge.url + "/") else {}, timeout=30)
        answer.raise_for_status()
        (folder / stored.name).write_bytes(answer.content)
    return [stored.name for stored in release.files]


def _made_once(tmp_path_factory, name: str, make):
    """Keys made once per test run and shared by its pytest-xdist workers: each worker making its own
    (gpg's, and minisign's at 1 GiB of scrypt a protected key) cost most of a minute a worker."""
    import dataclasses
    import fcntl

    from signing_keys import Key

    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # each worker's folder is in the run's own
        shared = shared.parent
    record = shared / f"{name}.json"
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not record.exists():
            folder = shared / name
            folder.mkdir()
            made = {label: dataclasses.asdict(key) for label, key in make(folder).items()}
            record.write_text(json.dumps(made))
    return {label: Key(**fields) for label, fields in json.loads(record.read_text()).items()}


@pytest.fixture(scope="session")
def pgp(tmp_path_factory):
    """OpenPGP keys made by the real gpg: label -> signing_keys.Key."""
    from signing_keys import openpgp_keys

    return _made_once(tmp_path_factory, "openpgp", openpgp_keys)


@pytest.fixture(scope="session")
def minisign(tmp_path_factory):
    """minisign keys made by the real minisign: protected and unencrypted."""
    from signing_keys import minisign_keys

    return _made_once(tmp_path_factory, "minisign", minisign_keys)


@pytest.fixture(scope="session")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A private CA's certificate for 127.0.0.1, and its key."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def tls_forge(certificate):
    """The sandbox forge over HTTPS, with a certificate no system trusts."""
    with Sandbox(tls=certificate) as sandbox:
        sandbox.add_project(REPOSITORY, ["v1.0.0"], TOKEN)
        yield sandbox


@contextlib.contextmanager
def podman_service(env: dict[str, str], folder: Path):
    """podman's Docker-compatible API on a socket in ``folder`` (for act), with the store and registries of ``env``."""
    socket = folder / "podman.sock"
    service = subprocess.Popen(
        ["podman", "system", "service", "--time=0", f"unix://{socket}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not socket.exists():
            assert time.monotonic() < deadline and service.poll() is None, "podman's API service did not start"
            time.sleep(0.1)
        yield f"unix://{socket}"
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(timeout=30)


def git_project(project: Path) -> str:
    """Commit the project, as a CI checkout is, and return the commit."""
    git = ["git", "-c", "user.email=ci@example.test", "-c", "user.name=ci"]
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    # A component of this very project at this very commit is read from the checkout, as GitLab does.
    subprocess.run(
        ["git", "remote", "add", "origin", "https://gitlab.example.test/acme/release-action.git"],
        cwd=project,
        check=True,
    )
    subprocess.run(["git", "add", "-A"], cwd=project, check=True)
    subprocess.run([*git, "commit", "-qm", "project"], cwd=project, check=True)
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=project, check=True, capture_output=True, text=True
    ).stdout.strip()


def gitlab_ci_local(tools, project: Path, *args: str, **variables: str) -> subprocess.CompletedProcess:
    given = {"CI_COMMIT_TAG": "v1.0.0", "GITFLIC_TOKEN": TOKEN, **variables}
    return subprocess.run(
        [
            "gitlab-ci-local",
            "--pull-policy",
            "if-not-present",
            "--helper-image",
            tools["HELPER_IMAGE"],
            "--container-executable",
            "podman",
            "--no-artifacts-to-source",
            *args,
            *[flag for key, value in given.items() for flag in ("--variable", f"{key}={value}")],
        ],
        cwd=project,
        env=tools,
        capture_output=True,
        text=True,
        timeout=900,
    )


# -- which Python processes see a secret ----------------------------------------------------------------

#: Appended to the probe Python's encodings/__init__.py: every Python process imports that module as it
#: starts, whatever its flags (-I, -S), before anything on PYTHONPATH. Not sitecustomize.py, which pip's
#: build isolation shadows with its own; not site.py, which Python 3.11 runs frozen. So early that only
#: os and sys are there, and no open().
PROBE_HOOK = """

def _probe(folder={folder!r}):
    import os, sys
    fd = os.open(folder + "/secrets", os.O_RDONLY)
    secrets = [secret for secret in os.read(fd, 1 << 20).decode().split("\\0") if secret]
    os.close(fd)
    seen = sorted(name for name, value in os.environ.items() if any(secret in value for secret in secrets))
    seen += ["argv"] if any(secret in arg for arg in sys.orig_argv for secret in secrets) else []
    pip = {{name: value for name, value in os.environ.items() if name.startswith("PIP_") and name not in seen}}
    record = {{"argv": sys.orig_argv, "seen": seen, "names": sorted(os.environ), "home": os.environ.get("HOME"),
              "pip": pip}}
    fd = os.open(f"{{folder}}/records/{{os.getpid()}}-{{os.urandom(4).hex()}}", os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    os.write(fd, repr(record).encode())
    os.close(fd)


_probe()
del _probe
"""


@dataclass(frozen=True)
class ProbeRecord:
    """One Python process: its command line, the variables (or "argv") that held one of the test's
    secrets, the names of all its variables, its HOME and its PIP_* settings."""

    argv: list[str]
    seen: list[str]
    names: list[str]
    home: str | None
    pip: dict[str, str]

    @property
    def command(self) -> str:
        return " ".join(self.argv)

    @property
    def is_program(self) -> bool:
        """release-action itself: its module run by a venv's Python (``-m release_action``), or its script."""
        return "release_action" in self.argv[1:] or (
            len(self.argv) > 1 and self.argv[1].endswith("/bin/release-action")
        )


@dataclass(frozen=True)
class PythonProbe:
    """A Python of the test's own, as actions/setup-python provides one to put first on PATH: this
    machine's interpreter, copied (Python finds its library beside its binary, so a link would not do),
    with its library linked in file by file, but for encodings/__init__.py, which carries the probe.
    Every venv made from it shares that library, so every process in the job records itself."""

    folder: Path

    @classmethod
    def make(cls, folder: Path, secrets: list[str]) -> PythonProbe:
        stdlib = Path(sysconfig.get_path("stdlib"))
        library = folder / "lib" / stdlib.name
        (folder / "bin").mkdir(parents=True)
        (folder / "records").mkdir()
        (library / "site-packages").mkdir(parents=True)  # nothing installed, as on a fresh runner
        (folder / "secrets").write_text("\0".join(secrets))
        shutil.copy2(os.path.realpath(sys._base_executable), folder / "bin" / "python3")
        for name in ("python", stdlib.name):
            (folder / "bin" / name).symlink_to("python3")
        # No __pycache__ is linked: what Python compiles for the probe, the changed module above all,
        # stays in the probe's folders and never lands beside the real library.
        for entry in stdlib.iterdir():
            if entry.name not in ("encodings", "site-packages", "__pycache__"):
                (library / entry.name).symlink_to(entry)
        (library / "encodings").mkdir()
        for entry in (stdlib / "encodings").iterdir():
            if entry.name not in ("__init__.py", "__pycache__"):
                (library / "encodings" / entry.name).symlink_to(entry)
        (library / "encodings" / "__init__.py").write_text(
            (stdlib / "encodings" / "__init__.py").read_text() + PROBE_HOOK.format(folder=str(folder))
        )
        return cls(folder)

    @property
    def bin(self) -> Path:
        return self.folder / "bin"

    def records(self) -> list[ProbeRecord]:
        return [
            ProbeRecord(**ast.literal_eval(path.read_text())) for path in sorted((self.folder / "records").iterdir())
        ]


@dataclass(frozen=True)
class Planted:
    """What another job on a shared runner could leave for the next: a pip.conf in the runner's home and
    one for PIP_CONFIG_FILE to name, each making pip write a log here if it reads it; a usercustomize.py
    in the home's user site and, for PYTHONPATH, a sitecustomize.py, each recording the command line of
    every process that imports it."""

    folder: Path

    @classmethod
    def make(cls, folder: Path) -> Planted:
        planted = cls(folder)
        (planted.home / ".config" / "pip").mkdir(parents=True)
        (planted.home / ".config" / "pip" / "pip.conf").write_text(f"[global]\nlog = {folder}/home-pip-conf.log\n")
        planted.pip_config_file.write_text(f"[global]\nlog = {folder}/pip-config-file.log\n")
        recorder = (
            f"import os, sys\nwith open(f'{folder}/imported-{{__name__}}-{{os.getpid()}}', 'w') as record:\n"
            "    record.write(' '.join(sys.orig_argv))\n"
        )
        planted.pythonpath.mkdir()
        (planted.pythonpath / "sitecustomize.py").write_text(recorder)
        user_site = (
            planted.home / ".local" / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
        )
        user_site.mkdir(parents=True)
        (user_site / "usercustomize.py").write_text(recorder)
        return planted

    @property
    def home(self) -> Path:
        return self.folder / "home"

    @property
    def pip_config_file(self) -> Path:
        return self.folder / "pip-config-file.conf"

    @property
    def pythonpath(self) -> Path:
        return self.folder / "pythonpath"

    def pip_logs(self) -> list[str]:
        """The pip.conf files pip read, by the logs they made it write."""
        return sorted(path.name for path in self.folder.glob("*.log"))

    def importers(self) -> set[tuple[str, str]]:
        """Which planted module (sitecustomize, usercustomize) each process imported, by its command line."""
        return {(path.name.split("-")[1], path.read_text()) for path in self.folder.glob("imported-*")}


def assert_only_the_program_saw_a_secret(records: list[ProbeRecord], held: set[str], *expected: str) -> None:
    """No Python process but release-action saw a secret; and the probe saw what it must, so that this
    cannot pass for want of records: the program, holding the secrets in the variables HELD, and each of
    EXPECTED (a part of a command line: the venv, pip)."""
    leaks = [
        f"{' '.join(record.command.split())[:160]}: {', '.join(record.seen)}"
        for record in records
        if record.seen and not record.is_program
    ]
    assert not leaks, "secrets reached processes other than the program:\n  " + "\n  ".join(leaks)
    program = [record for record in records if record.is_program]
    assert program and all(set(record.seen) == held for record in program), [(r.argv, r.seen) for r in program]
    commands = [record.command for record in records]
    for part in expected:
        assert any(part in command for command in commands), f"no process ran {part!r}: {commands}"
