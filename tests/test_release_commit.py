"""scripts/release: the release commit that makes `uses: OWNER/release-action@vX.Y.Z` pull its image."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
GIT = ["git", "-c", "user.email=ci@example.test", "-c", "user.name=ci"]


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    for name in (
        "action.yml",
        "scripts/release",
        "scripts/ci_templates.py",
        "templates/release.yml",
        ".gitlab-ci-template.yml",
        "python/action.yml",
        "examples/gitflic-shell/gitflic-ci.yaml",
    ):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "release_action", tmp_path / "release_action", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=tmp_path, check=True)
    subprocess.run(
        ["git", "remote", "add", "origin", "git@github.com:Acme-Tools/release-action.git"], cwd=tmp_path, check=True
    )
    subprocess.run(["git", "add", "-A"], cwd=tmp_path, check=True)
    subprocess.run([*GIT, "commit", "-qm", "work"], cwd=tmp_path, check=True)
    return tmp_path


def release(repository: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["scripts/release", *args],
        cwd=repository,
        capture_output=True,
        text=True,
        timeout=60,
        env={
            "PATH": "/usr/bin:/bin",
            "GIT_AUTHOR_NAME": "ci",
            "GIT_AUTHOR_EMAIL": "ci@example.test",
            "GIT_COMMITTER_NAME": "ci",
            "GIT_COMMITTER_EMAIL": "ci@example.test",
        },
    )


def show(repository: Path, revision: str) -> str:
    return subprocess.run(["git", "show", revision], cwd=repository, capture_output=True, text=True, check=True).stdout


def test_the_release_commit_points_the_action_at_its_image_and_leaves_the_branch_alone(repository):
    branch = show(repository, "main:action.yml")
    made = release(repository, "1.4.0")
    assert made.returncode == 0, made.stderr

    released = yaml.safe_load(show(repository, "v1.4.0:action.yml"))
    assert released["runs"] == {"using": "docker", "image": "docker://ghcr.io/acme-tools/release-action:1.4.0"}
    assert released["inputs"] == yaml.safe_load(branch)["inputs"]
    assert '__version__ = "1.4.0"' in show(repository, "v1.4.0:release_action/__init__.py")
    tags = {tag: show(repository, f"{tag}^{{commit}}").splitlines()[0] for tag in ("v1.4.0", "v1.4", "v1")}
    assert len(set(tags.values())) == 1
    # The branch and the working tree still build the Dockerfile.
    assert show(repository, "main:action.yml") == branch == (repository / "action.yml").read_text()
    assert "image: Dockerfile" in branch
    assert subprocess.run(["git", "status", "--porcelain"], cwd=repository, capture_output=True, text=True).stdout == ""
    assert "git push origin v1.4.0" in made.stdout


def test_the_release_commit_pins_the_gitlab_component_template_and_shell_example(repository, tmp_path_factory):
    assert release(repository, "1.4.0").returncode == 0
    released = tmp_path_factory.mktemp("released")
    archive = subprocess.run(["git", "archive", "v1.4.0"], cwd=repository, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(released)], input=archive, check=True)

    image = "ghcr.io/acme-tools/release-action:1.4.0"
    component = yaml.safe_load_all((released / "templates/release.yml").read_text())
    assert next(component)["spec"]["inputs"]["image"]["default"] == image
    assert f"RELEASE_ACTION_IMAGE: {image}" in (released / ".gitlab-ci-template.yml").read_text()
    assert "release@v1.4.0" in (released / "templates/release.yml").read_text()
    # The shell-executor example installs the package of this version.
    example = yaml.safe_load((released / "examples/gitflic-shell/gitflic-ci.yaml").read_text())
    assert example["release"]["variables"]["RELEASE_ACTION_VERSION"] == "1.4.0"
    # What the release commit holds is what the generator writes from its action.yml and version.
    check = subprocess.run(
        [sys.executable, "scripts/ci_templates.py", "--check"],
        cwd=released,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(released)},
    )
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.parametrize("version", ["1.4", "v1.4.0", "1.4.0-rc.1", ""])
def test_a_version_that_is_not_three_numbers_is_refused_in_one_sentence(repository, version):
    made = release(repository, version)
    assert made.returncode == 2
    assert len(made.stderr.strip().splitlines()) == 1 and "Traceback" not in made.stderr
    assert subprocess.run(["git", "tag"], cwd=repository, capture_output=True, text=True).stdout == ""


def test_a_version_released_before_is_refused(repository):
    assert release(repository, "1.4.0").returncode == 0
    again = release(repository, "1.4.0")
    assert again.returncode == 2 and again.stderr.strip() == "The tag v1.4.0 exists already."


def test_a_repository_not_on_github_names_its_image(repository):
    subprocess.run(
        ["git", "remote", "set-url", "origin", "https://gitflic.ru/project/acme/tool.git"], cwd=repository, check=True
    )
    assert "name the image" in release(repository, "1.4.0").stderr
    made = release(repository, "1.4.0", "registry.example.ru/acme/release-action")
    assert made.returncode == 0, made.stderr
    assert "  image: docker://registry.example.ru/acme/release-action:1.4.0" in show(repository, "v1.4.0:action.yml")
