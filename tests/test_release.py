"""The release, rehearsed end to end with the real tools: ``scripts/release`` makes the release
commit, nektos/act runs ``.github/workflows/release.yml`` on its tag, buildah builds linux/amd64 and
linux/arm64 (under qemu-user-static) and pushes to Debian's docker-registry on 127.0.0.1, and the
workflow publishes the project's own release into the sandbox forge with this action. Then the
pushed arm64 image runs under emulation, and a user's workflow pulls the image instead of building.

Each of podman's stores here is a fresh one in a temporary folder: the build's, and each API
service's, so a pull is a real pull and the machine's own store is left as it was."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from conftest import REPOSITORY, TOKEN, assert_no_token, local_sha256, podman_service

from release_action.sandbox.server import Sandbox

pytestmark = pytest.mark.container

ROOT = Path(__file__).resolve().parent.parent
VERSION = "1.2.3"
MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


@dataclass
class Registry:
    host: str
    folder: Path

    def get(self, path: str) -> tuple[dict, str]:
        """A JSON document of the registry API and the digest it answers with."""
        request = urllib.request.Request(f"http://{self.host}/v2/{path}", headers={"Accept": MANIFEST_TYPES})
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read()), answer.headers.get("Docker-Content-Digest", "")

    def platforms(self, repository: str, reference: str) -> dict[str, dict]:
        """platform -> the image manifest for that platform, of a manifest list."""
        index, _ = self.get(f"{repository}/manifests/{reference}")
        return {
            f"{entry['platform']['os']}/{entry['platform']['architecture']}": self.get(
                f"{repository}/manifests/{entry['digest']}"
            )[0]
            for entry in index["manifests"]
        }

    def env(self, name: str) -> dict[str, str]:
        """Variables for podman and buildah: a fresh store NAME, and this registry as docker.io's mirror,
        where the Dockerfile's base image is found for either architecture."""
        store = self.folder / name
        store.mkdir(exist_ok=True)
        (store / "storage.conf").write_text(
            f'[storage]\ndriver = "vfs"\nrunroot = "{store}/run"\ngraphroot = "{store}/graph"\n'
        )
        return {
            "CONTAINERS_STORAGE_CONF": str(store / "storage.conf"),
            "CONTAINERS_REGISTRIES_CONF": str(self.folder / "registries.conf"),
        }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def registry(tools, tmp_path_factory):
    """Debian's docker-registry on 127.0.0.1, serving docker.io/library/debian:12.12-slim for both architectures."""
    folder = tmp_path_factory.mktemp("registry")
    host = f"127.0.0.1:{_free_port()}"
    (folder / "config.yml").write_text(f"""version: 0.1
log: {{level: warn}}
storage: {{filesystem: {{rootdirectory: {folder}/data}}, delete: {{enabled: true}}}}
http: {{addr: "{host}"}}
""")
    (folder / "registries.conf").write_text(f"""
[[registry]]
prefix = "docker.io"
location = "docker.io"
[[registry.mirror]]
location = "{host}"
insecure = true

[[registry]]
location = "{host}"
insecure = true
""")
    server = subprocess.Popen(
        [tools["REGISTRY"], "serve", str(folder / "config.yml")],
        stdout=subprocess.DEVNULL,
        stderr=(folder / "registry.log").open("w"),
    )
    registry = Registry(host, folder)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                registry.get("")
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, (folder / "registry.log").read_text()
                time.sleep(0.1)
        base = f"{host}/library/debian:12.12-slim"
        env = {**tools, "CONTAINERS_REGISTRIES_CONF": str(folder / "registries.conf")}
        for step in (
            ["manifest", "create", base],
            ["manifest", "add", base, f"containers-storage:{tools['BASE_IMAGE']}"],
            ["manifest", "add", base, f"containers-storage:{tools['ARM64_BASE_IMAGE']}"],
            ["manifest", "push", "--all", "--quiet", base, f"docker://{base}"],
            ["manifest", "rm", base],
        ):
            subprocess.run(["podman", *step], env=env, check=True, capture_output=True, timeout=600)
        yield registry
    finally:
        server.terminate()
        server.wait(timeout=30)
        # Each store holds full copies of its images (vfs): hundreds of MB, of no use after.
        for store in folder.glob("*/storage.conf"):
            shutil.rmtree(store.parent)


def _act(workflow: str, project: Path, docker_host: str, env: dict[str, str], *args: str) -> str:
    cache = project.parent / f"act-cache-{Path(workflow).stem}"
    cache.mkdir(exist_ok=True)
    run = subprocess.run(
        [
            "act",
            "-W",
            workflow,
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
            *args,
        ],
        cwd=project,
        env={**env, "DOCKER_HOST": docker_host},
        capture_output=True,
        text=True,
        timeout=1800,
    )
    log = run.stdout + run.stderr
    assert run.returncode == 0, log
    return log


def _project(tmp_path: Path) -> Path:
    """This checkout's files, as a fresh repository with one commit."""
    project = tmp_path / "project"
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.split("\0")
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (project / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, project / name)
    git = ["git", "-c", "user.email=ci@example.test", "-c", "user.name=ci"]
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=project, check=True)
    subprocess.run(["git", "add", "-A"], cwd=project, check=True)
    subprocess.run([*git, "commit", "-qm", "project"], cwd=project, check=True)
    return project


def _step_seconds(log: str, step: str) -> float:
    """The wall time act reports for one step (a Go duration: 850ms, 4.2s, 1m3.5s)."""
    [(minutes, seconds, unit)] = re.findall(rf"Success - Main {re.escape(step)} \[(?:(\d+)m)?([0-9.]+)(ms|s)\]", log)
    return int(minutes or 0) * 60 + float(seconds) / (1000 if unit == "ms" else 1)


@dataclass
class Release:
    project: Path
    image: str
    digest: str
    log: str
    forge: Sandbox


@pytest.fixture(scope="module")
def release(tools, registry, tmp_path_factory):
    project = _project(tmp_path_factory.mktemp("release"))
    image = f"{registry.host}/acme/release-action"
    made = subprocess.run(
        ["scripts/release", VERSION, image], cwd=project, env=tools, capture_output=True, text=True, check=True
    )
    assert f"git push origin v{VERSION}" in made.stdout
    subprocess.run(["git", "checkout", "-q", f"v{VERSION}"], cwd=project, check=True)
    (project.parent / "event.json").write_text(json.dumps({"ref": f"refs/tags/v{VERSION}"}))
    with Sandbox() as forge, podman_service({**tools, **registry.env("action")}, project.parent) as docker_host:
        forge.add_project(REPOSITORY, [f"v{VERSION}"], TOKEN)
        build = registry.env("build")
        log = _act(
            ".github/workflows/release.yml",
            project,
            docker_host,
            tools,
            "push",
            "-e",
            str(project.parent / "event.json"),
            "--var",
            f"RELEASE_IMAGE={image}",
            "--var",
            f"GITFLIC_API_URL={forge.api_url('gitflic')}",
            "--var",
            f"GITFLIC_REPOSITORY={REPOSITORY}",
            "--secret",
            f"GITFLIC_TOKEN={TOKEN}",
            "--secret",
            "GITHUB_TOKEN=registry-token",
            *(f"--env={key}={value}" for key, value in build.items()),
            "--env=BUILDAH_ISOLATION=chroot",
        )
        _, digest = registry.get(f"acme/release-action/manifests/{VERSION}")
        yield Release(project, image, digest, log, forge)


def test_the_release_pushes_one_image_for_amd64_and_arm64_under_three_tags(release, registry):
    platforms = registry.platforms("acme/release-action", VERSION)
    assert set(platforms) == {"linux/amd64", "linux/arm64"}
    for tag in (VERSION, "1.2", "1"):
        assert registry.get(f"acme/release-action/manifests/{tag}")[1] == release.digest, tag
    # The digest, for pinning, is in the job summary and the release notes.
    assert f"{release.image}@{release.digest}" in release.log.split("Summary - ", 1)[1]
    [published] = release.forge.releases(REPOSITORY)
    assert f"{release.image}:{VERSION}@{release.digest}" in published.body
    assert_no_token(release.log)
    assert "registry-token" not in release.log


def test_the_image_is_labelled_with_the_version_of_its_tag(release, registry):
    for platform, manifest in registry.platforms("acme/release-action", VERSION).items():
        config, _ = registry.get(f"acme/release-action/blobs/{manifest['config']['digest']}")
        labels = config["config"]["Labels"]
        assert labels["org.opencontainers.image.version"] == VERSION, platform
        assert config["architecture"] == platform.split("/")[1]


def test_the_project_releases_itself_with_its_checksums_through_the_action(release):
    [published] = release.forge.releases(REPOSITORY)
    assert published.tag == f"v{VERSION}" and published.title == f"release-action {VERSION}"
    stored = {f.name: f for f in published.files}
    assert set(stored) == {
        f"release-action-{VERSION}.tar.gz",
        f"release-action-{VERSION}.image",
        "SHA256SUMS",
        f"release_action-{VERSION}-py3-none-any.whl",
        f"release_action-{VERSION}.tar.gz",
    }
    sums = dict(reversed(line.split("  ", 1)) for line in Path(stored["SHA256SUMS"].path).read_text().splitlines())
    assert sums == {name: f.digests["sha256"] for name, f in stored.items() if name != "SHA256SUMS"}
    assert (
        Path(stored[f"release-action-{VERSION}.image"].path).read_text().strip()
        == f"{release.image}:{VERSION}@{release.digest}"
    )
    # The package for runners without Docker is built from the release commit: it carries its version.
    wheel = zipfile.ZipFile(stored[f"release_action-{VERSION}-py3-none-any.whl"].path)
    assert f'__version__ = "{VERSION}"' in wheel.read("release_action/__init__.py").decode()


def test_the_arm64_image_runs_under_emulation_and_publishes(tools, release, registry, tmp_path):
    env = {**tools, **registry.env("arm64")}
    image = f"{release.image}:{VERSION}"
    pull = subprocess.run(
        ["podman", "pull", "--quiet", "--platform", "linux/arm64", image],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert pull.returncode == 0, pull.stderr

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["podman", "run", "--rm", *args], env=env, capture_output=True, text=True, timeout=600)

    assert run("--entrypoint", "uname", image, "-m").stdout.strip() == "aarch64"
    help_run = run(image, "--help")
    assert help_run.returncode == 0 and "--tag-name" in help_run.stdout, help_run.stderr
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "tool-linux-arm64.tar.gz").write_bytes(os.urandom(200_000))
    with Sandbox() as forge:
        forge.add_project(REPOSITORY, ["v1.0.0"], TOKEN)
        published = run(
            "-v",
            f"{tmp_path}:/work",
            "-w",
            "/work",
            "-e",
            f"INPUT_API_URL={forge.api_url('gitflic')}",
            "-e",
            f"INPUT_TOKEN={TOKEN}",
            "-e",
            f"INPUT_REPOSITORY={REPOSITORY}",
            "-e",
            "INPUT_TAG_NAME=v1.0.0",
            "-e",
            "INPUT_FILES=dist/*",
            image,
        )
        assert published.returncode == 0, published.stdout + published.stderr
        [stored] = forge.releases(REPOSITORY)[0].files
        assert (
            stored.digests["sha256"]
            == hashlib.sha256((tmp_path / "dist" / "tool-linux-arm64.tar.gz").read_bytes()).hexdigest()
        )
    assert_no_token(published.stdout + published.stderr)


def _user_workflow(folder: Path, ref: str) -> Path:
    """A user's repository whose release job runs acme/release-action@REF."""
    project = folder / f"user-{ref}"
    (project / ".github" / "workflows").mkdir(parents=True)
    (project / ".github" / "workflows" / "release.yml").write_text(f"""
on: workflow_dispatch
jobs:
  release:
    runs-on: ubuntu-latest
    steps:
      - run: mkdir -p dist && head -c 300000 /dev/urandom > dist/tool.tar.gz
      - id: release
        name: release-action
        uses: acme/release-action@{ref}
        with:
          api_url: ${{{{ secrets.API_URL }}}}
          token: ${{{{ secrets.TOKEN }}}}
          repository: {REPOSITORY}
          tag_name: v1.0.0
          files: dist/*
      - run: test -n "${{{{ steps.release.outputs.release_id }}}}"
""")
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    return project


def test_a_workflow_pinned_to_a_release_pulls_the_image_and_a_branch_builds_it(tools, release, registry, tmp_path):
    # Each run starts from an empty store, as on a hosted runner: nothing pulled, no build cache
    # (the branch's build pulls the base image from the same registry).
    seconds = {}
    for ref, action, env in (
        (f"v{VERSION}", release.project, {**tools, **registry.env("user")}),
        ("main", _project(tmp_path / "branch"), {**tools, **registry.env("branch")}),
    ):
        project = _user_workflow(tmp_path, ref)
        with Sandbox() as forge, podman_service(env, project.parent) as docker_host:
            forge.add_project(REPOSITORY, ["v1.0.0"], TOKEN)
            log = _act(
                ".github/workflows/release.yml",
                project,
                docker_host,
                env,
                "workflow_dispatch",
                "--local-repository",
                f"acme/release-action@{ref}={action}",
                "--secret",
                f"API_URL={forge.api_url('gitflic')}",
                "--secret",
                f"TOKEN={TOKEN}",
            )
            assert len(forge.releases(REPOSITORY)[0].files) == 1
        seconds[ref] = _step_seconds(log, "release-action")
        assert ("docker build" in log) == (ref == "main"), log
    amd64 = registry.platforms("acme/release-action", VERSION)["linux/amd64"]
    size = subprocess.run(
        ["podman", "image", "inspect", f"{release.image}:{VERSION}", "--format", "{{.Size}}"],
        env={**tools, **registry.env("user")},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # benchmarks/run.py reads this line for its table.
    print(
        "\nimage figures:",
        json.dumps(
            {
                "size_mb": round(int(size) / 1e6, 1),
                "pull_mb": round(sum(layer["size"] for layer in [amd64["config"], *amd64["layers"]]) / 1e6, 1),
                "pulled_s": round(seconds[f"v{VERSION}"], 1),
                "built_s": round(seconds["main"], 1),
            }
        ),
    )
    # Timing belongs to the benchmark, which prints these figures (these machines are shared: a pull
    # took 26 s and a build 63 s under the suite's other workers); that the pinned run pulled and never
    # built is proved by its log above.


def test_a_tag_that_is_not_on_a_release_commit_publishes_nothing(tools, tmp_path):
    project = _project(tmp_path)
    subprocess.run(["git", "tag", f"v{VERSION}"], cwd=project, check=True)
    (tmp_path / "event.json").write_text(json.dumps({"ref": f"refs/tags/v{VERSION}"}))
    run = subprocess.run(
        [
            "act",
            "push",
            "-W",
            ".github/workflows/release.yml",
            "-e",
            str(tmp_path / "event.json"),
            "-P",
            "ubuntu-latest=-self-hosted",
            "--action-offline-mode",
            "--action-cache-path",
            str(tmp_path / "cache"),
            "--var",
            "RELEASE_IMAGE=registry.example.test/acme/release-action",
            "--secret",
            f"GITFLIC_TOKEN={TOKEN}",
        ],
        cwd=project,
        env=tools,
        capture_output=True,
        text=True,
        timeout=600,
    )
    log = run.stdout + run.stderr
    assert run.returncode != 0
    assert (
        f"v{VERSION} is not on a release commit for registry.example.test/acme/release-action; "
        f"make one with: scripts/release {VERSION}"
    ) in log
    assert "Build the image" not in log
    assert_no_token(log)


def test_pypi_gets_the_release_s_own_package_by_trusted_publishing(release, tmp_path):
    """The pypi job builds the package again and checks it against the release's checksums before the
    pinned pypa/gh-action-pypi-publish uploads it; it is the one job with an OIDC token. Rehearsed here:
    act skips it (PYPI_PUBLISH is not set), and the same build of the release commit gives the very
    bytes the release carries."""
    workflow = yaml.safe_load((release.project / ".github" / "workflows" / "release.yml").read_text())
    jobs = workflow["jobs"]
    pypi = jobs["pypi"]
    assert pypi["needs"] == "release" and pypi["if"] == "vars.PYPI_PUBLISH == 'true'"
    assert pypi["permissions"] == {"contents": "read", "id-token": "write"} and pypi["environment"] == "pypi"
    assert all("id-token" not in (job.get("permissions") or {}) for name, job in jobs.items() if name != "pypi")
    assert "id-token" not in workflow.get("permissions", {})
    publish = [step for step in pypi["steps"] if "gh-action-pypi-publish" in step.get("uses", "")]
    assert len(publish) == 1 and re.fullmatch(r"pypa/gh-action-pypi-publish@[0-9a-f]{40}", publish[0]["uses"])
    check = next(step["run"] for step in pypi["steps"] if "sha256sum --strict -c" in step.get("run", ""))
    assert "scripts/package.py --no-isolation dist" in check and jobs["release"]["outputs"]["package_sha256"]
    assert "/release] " in release.log and "/pypi] " not in release.log, "act ran the release job, not the pypi job"

    again = tmp_path / "again"
    subprocess.run(["git", "clone", "-q", "--branch", f"v{VERSION}", str(release.project), str(again)], check=True)
    subprocess.run(
        [sys.executable, "scripts/package.py", "dist"], cwd=again, check=True, capture_output=True, timeout=600
    )
    [published] = release.forge.releases(REPOSITORY)
    carried = {f.name: f.digests["sha256"] for f in published.files if f.name.startswith("release_action-")}
    assert carried == {path.name: local_sha256(path) for path in (again / "dist").iterdir()}
