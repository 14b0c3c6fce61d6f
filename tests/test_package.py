"""Runners without Docker: the product as a Python package.

The wheel and sdist are built as the release builds them, uploaded with twine to a real package
index (pypiserver on 127.0.0.1), installed with pip from that index into a clean venv, and the
installed ``release-action`` publishes into the sandbox.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import requests
import yaml
from conftest import (
    REPOSITORY,
    ROOT,
    TOKEN,
    Planted,
    PythonProbe,
    assert_no_token,
    assert_only_the_program_saw_a_secret,
    git_project,
    gitlab_ci_local,
    local_sha256,
    stored,
)

from release_action import __version__

# One worker builds the package: two builds in one checkout would share its egg-info.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("package")]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def package_index(folder: Path):
    """pypiserver on 127.0.0.1 with uploads allowed; packages it lacks are found on PyPI."""
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pypiserver",
            "run",
            "-i",
            "127.0.0.1",
            "-p",
            str(port),
            "-a",
            ".",
            "-P",
            ".",
            "--fallback-url",
            "https://pypi.org/simple/",
            str(folder),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None and time.monotonic() < deadline, "pypiserver did not start"
            with contextlib.suppress(requests.ConnectionError):
                if requests.get(f"{url}/simple/", timeout=5).status_code == 200:
                    break
            time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> list[Path]:
    """The sdist, and the wheel built from it, as the release workflow makes them (scripts/package.py,
    ``python -m build`` with the commit's time)."""
    out = tmp_path_factory.mktemp("dist")
    build = subprocess.run(
        [sys.executable, "scripts/package.py", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert build.returncode == 0, build.stdout + build.stderr
    return sorted(out.iterdir())


def _checkout(folder: Path, umask: int) -> Path:
    """This checkout's files as a new repository, its one commit dated as a release commit is, written
    under ``umask`` at this moment (so with other modes and times than another copy's)."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.split("\0")
    old = os.umask(umask)
    try:
        for name in filter(None, files):
            if (ROOT / name).is_file() and not name.startswith("tests/"):
                (folder / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(ROOT / name, folder / name)
    finally:
        os.umask(old)
    dated = {**os.environ, "GIT_AUTHOR_DATE": "@1767225600 +0000", "GIT_COMMITTER_DATE": "@1767225600 +0000"}
    git = ["git", "-c", "user.email=ci@example.test", "-c", "user.name=ci"]
    subprocess.run(["git", "init", "-q"], cwd=folder, check=True)
    subprocess.run(["git", "add", "-A"], cwd=folder, check=True)
    subprocess.run([*git, "commit", "-qm", "release"], cwd=folder, check=True, env=dated)
    return folder


def test_a_commit_builds_the_same_package_byte_for_byte(tmp_path):
    """What lets the release's pypi job check its own build against the release's checksums."""
    digests = []
    for n, umask in enumerate((0o022, 0o002)):
        project = _checkout(tmp_path / f"copy{n}", umask)
        done = subprocess.run(
            [sys.executable, "scripts/package.py", "dist"], cwd=project, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, done.stdout + done.stderr
        digests.append({path.name: local_sha256(path) for path in (project / "dist").iterdir()})
        time.sleep(1.1)  # the second copy's files are written a second later
    assert len(digests[0]) == 2 and digests[0] == digests[1]


#: pip as on a clean machine: no configured indexes, links or cache, only the index named.
CLEAN_PIP = {"PIP_CONFIG_FILE": os.devnull, "PIP_FIND_LINKS": "", "PIP_NO_CACHE_DIR": "1"}


def test_the_release_workflow_s_package_step_builds_the_same_bytes_with_tools_pinned_by_hash(tmp_path):
    """The step as the release job runs it, in a job that holds tokens: its build tools installed by hash
    from scripts/package-requirements.txt, and setuptools taken from them (--no-isolation), not from the
    index. It builds what a build isolated from this machine's Python gives, byte for byte."""
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "release.yml").read_text())
    [step] = [step for step in workflow["jobs"]["release"]["steps"] if step.get("id") == "package"]
    project = _checkout(tmp_path / "project", 0o022)
    runner = {
        **os.environ,
        **CLEAN_PIP,
        "RUNNER_TEMP": str(tmp_path),
        "VERSION": __version__,
        "GITHUB_OUTPUT": str(tmp_path / "github_output"),
    }
    run = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
        cwd=project,
        env=runner,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    isolated = subprocess.run(
        [sys.executable, "scripts/package.py", str(tmp_path / "isolated")],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert isolated.returncode == 0, isolated.stdout + isolated.stderr
    expected = {path.name: local_sha256(path) for path in (tmp_path / "isolated").iterdir()}
    assert {path.name: local_sha256(path) for path in (project / "dist").iterdir()} == expected
    recorded = (tmp_path / "github_output").read_text()
    assert all(f"{digest}  {name}" in recorded for name, digest in expected.items()), recorded


def test_the_wheel_holds_the_program_and_its_data_and_no_tests(built):
    names = [path.name for path in built]
    assert names == [f"release_action-{__version__}-py3-none-any.whl", f"release_action-{__version__}.tar.gz"]
    inside = zipfile.ZipFile(built[0]).namelist()
    for needed in (
        "release_action/cli.py",
        "release_action/action.yml",
        "release_action/forges/gitverse.py",
        "release_action/verify.py",
        "release_action/public_keys.py",
        "release_action/sandbox/descriptions/sourcecraft-swagger.json",
        "release_action/sandbox/descriptions/gitea-swagger.json",
    ):
        assert needed in inside
    assert not [name for name in inside if name.startswith("tests/")]
    entry_points = zipfile.ZipFile(built[0]).read(f"release_action-{__version__}.dist-info/entry_points.txt").decode()
    assert "release-action = release_action.cli:run" in entry_points


def _installed(venv: Path, index: str, requirement: str, expected: Path, *options: str) -> Path:
    """A clean venv with ``requirement`` from ``index``, checked to be ``expected``, byte for byte."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    report = venv.parent / f"{venv.name}-report.json"
    install = subprocess.run(
        [
            str(venv / "bin" / "pip"),
            "install",
            "--quiet",
            "--index-url",
            f"{index}/simple/",
            "--report",
            str(report),
            *options,
            requirement,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=venv.parent,
        env={**os.environ, **CLEAN_PIP},
    )
    assert install.returncode == 0, install.stdout + install.stderr
    [ours] = [
        item for item in json.loads(report.read_text())["install"] if item["metadata"]["name"] == "release-action"
    ]
    assert ours["download_info"]["url"].startswith(index), ours["download_info"]["url"]
    assert ours["download_info"]["archive_info"]["hashes"]["sha256"] == local_sha256(expected)
    return venv


def test_the_package_from_an_index_installs_into_a_clean_venv_and_publishes(built, forge, dist, tmp_path):
    packages = tmp_path / "packages"
    packages.mkdir()
    with package_index(packages) as index:
        upload = subprocess.run(
            [
                sys.executable,
                "-m",
                "twine",
                "upload",
                "--non-interactive",
                "--disable-progress-bar",
                "--repository-url",
                f"{index}/",
                "-u",
                "ci",
                "-p",
                "ci",
                *map(str, built),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert upload.returncode == 0, upload.stdout + upload.stderr
        assert sorted(path.name for path in packages.iterdir()) == sorted(path.name for path in built)

        venv = _installed(tmp_path / "venv", index, f"release-action=={__version__}", built[0])
        # The sdist installs too, built on the user's machine.
        _installed(
            tmp_path / "from-sdist", index, f"release-action=={__version__}", built[1], "--no-binary", "release-action"
        )

    env = {
        "PATH": f"{venv / 'bin'}:{os.environ.get('PATH', '')}",
        "INPUT_API_URL": forge.api_url("gitflic"),
        "INPUT_TOKEN": TOKEN,
        "INPUT_REPOSITORY": REPOSITORY,
        "INPUT_TAG_NAME": "v1.0.0",
        "INPUT_FILES": "*",
        "INPUT_WORKING_DIRECTORY": str(dist),
        "INPUT_CHECKSUMS": "SHA256SUMS",
    }
    run = subprocess.run(
        [str(venv / "bin" / "release-action")], env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert_no_token(run.stdout, run.stderr)
    files = stored(forge)
    assert {name: files[name] for name in files if name != "SHA256SUMS"} == {
        path.name: [local_sha256(path)] for path in dist.iterdir()
    }
    assert "SHA256SUMS" in files
    # The downloader's command is in the package too; with no key, it says so in one sentence.
    verify = subprocess.run(
        [str(venv / "bin" / "release-action"), "verify", "--dir", str(dist)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert verify.returncode == 2 and "--key" in verify.stdout + verify.stderr, verify.stdout + verify.stderr


def _shell_example(folder: Path, built: list[Path]) -> tuple[Path, Path]:
    """A project with the GitFlic shell-executor example and a build of one file, and a folder holding the
    package for the index."""
    example = (ROOT / "examples" / "gitflic-shell" / "gitflic-ci.yaml").read_text()
    pipeline = yaml.safe_load(example)
    assert pipeline["release"]["variables"]["RELEASE_ACTION_VERSION"] == __version__
    assert "image" not in pipeline["build"] and "image" not in pipeline["release"]
    project = folder / "project"
    project.mkdir()
    (project / "gitflic-ci.yaml").write_text(example)
    build = project / "build.sh"
    build.write_text("#!/bin/sh\nset -e\nmkdir -p dist\nhead -c 200000 /dev/urandom > dist/tool.tar.gz\n")
    build.chmod(0o755)
    git_project(project)
    packages = folder / "packages"
    packages.mkdir()
    for path in built:
        shutil.copy(path, packages)
    return project, packages


def _gitflic_ci(forge) -> dict[str, str]:
    """GitFlic CI's own variables: the program takes the API address, project and tag from them."""
    owner, name = REPOSITORY.split("/")
    return {"CI_SERVER_REST_URL": forge.api_url("gitflic"), "CI_PROJECT_NAMESPACE": owner, "CI_PROJECT_NAME": name}


@pytest.mark.container
def test_the_gitflic_shell_executor_example_installs_the_package_from_an_index_and_publishes(
    built, tools, forge, tmp_path
):
    """No Docker on the agent: gitlab-ci-local runs jobs without an image in the host's shell, as a
    GitFlic agent with a shell executor does; pip takes the package from the index named by PIP_INDEX_URL."""
    project, packages = _shell_example(tmp_path, built)
    with package_index(packages) as index:
        run = gitlab_ci_local(
            tools, project, "--file", "gitflic-ci.yaml", PIP_INDEX_URL=f"{index}/simple/", **_gitflic_ci(forge)
        )
    log = run.stdout + run.stderr
    assert run.returncode == 0, log
    assert sorted(stored(forge)) == ["tool.tar.gz"]
    assert "Outputs: release_id=" in log, "the installed program did not run to its end"
    assert_no_token(log)


@pytest.mark.container
def test_in_the_gitflic_shell_executor_example_only_the_program_sees_the_token(built, tools, forge, tmp_path, pgp):
    """The job's variables, GITFLIC_TOKEN and a signing key with its passphrase, are every command's in a
    shell executor; the example gives the venv and pip none of them. A Python of the test's own, first on
    PATH, records every Python process of the job. Tried with it: a PIP_CONFIG_FILE in the agent's own
    environment, naming a file any job could write, and a PYTHONPATH among the project's variables."""
    import base64

    key = pgp["ed25519"]
    signing_key = base64.b64encode(key.secret.encode()).decode()  # a value GitLab and GitFlic can mask
    probe = PythonProbe.make(tmp_path / "python", [TOKEN, signing_key, key.passphrase])
    planted = Planted.make(tmp_path / "planted")
    project, packages = _shell_example(tmp_path, built)
    agent = {**tools, "PATH": f"{probe.bin}:{tools['PATH']}", "PIP_CONFIG_FILE": str(planted.pip_config_file)}
    with package_index(packages) as index:
        run = gitlab_ci_local(
            agent,
            project,
            "--file",
            "gitflic-ci.yaml",
            PIP_INDEX_URL=f"{index}/simple/",
            INPUT_CHECKSUMS="SHA256SUMS",
            INPUT_SIGNING_KEY=signing_key,
            INPUT_SIGNING_PASSPHRASE=key.passphrase,
            PYTHONPATH=str(planted.pythonpath),
            **_gitflic_ci(forge),
        )
    log = run.stdout + run.stderr
    assert run.returncode == 0, log

    records = probe.records()
    assert_only_the_program_saw_a_secret(
        records,
        {"GITFLIC_TOKEN", "INPUT_SIGNING_KEY", "INPUT_SIGNING_PASSPHRASE"},
        "-m venv",
        "-m ensurepip",
        "-m pip install",
    )
    [program] = [record for record in records if record.is_program]
    assert "PYTHONPATH" in program.names and "PIP_CONFIG_FILE" in program.pip, "both reached the job"
    assert planted.pip_logs() == [], "pip read the pip.conf PIP_CONFIG_FILE names"
    assert planted.importers() == set(), "a process of the job imported a module from PYTHONPATH"
    assert sorted(stored(forge)) == ["SHA256SUMS", "SHA256SUMS.asc", "release.intoto.jsonl", "tool.tar.gz"]
    assert_no_token(log)
    assert key.passphrase not in log
