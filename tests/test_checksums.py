"""The checksums file: written from the uploads' own reads, published and verified like any file,
and checked by the real ``sha256sum -c`` on what the forge serves."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import FORGE_NAMES, download_release, local_sha256, stored

from release_action.artifacts import Artifact

FORGES = pytest.mark.parametrize("forge_name", FORGE_NAMES)


@pytest.fixture
def build(dist: Path) -> Path:
    (dist / "out").mkdir()
    (dist / "out" / "app").write_bytes(b"\x7fELF linux build")
    return dist


def _check(tool: str, folder: Path, sums: str) -> list[str]:
    """What the real tool says of each file, run in the folder of downloaded files."""
    done = subprocess.run([tool, "--strict", "-c", sums], cwd=folder, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.splitlines()


@FORGES
@pytest.mark.parametrize("algorithm, tool", [("sha256", "sha256sum"), ("sha512", "sha512sum")])
def test_the_real_tool_checks_every_downloaded_file(publish, forge, build, tmp_path, forge_name, algorithm, tool):
    run = publish(forge=forge_name, files="*\nout/app#app-linux-amd64", checksums="SUMS", checksums_algorithm=algorithm)

    assert run.code == 0, run.log
    downloaded = tmp_path / "downloaded"
    downloaded.mkdir()
    names = download_release(forge, forge_name, downloaded)
    published = sorted(name for name in names if name != "SUMS")
    assert _check(tool, downloaded, "SUMS") == [f"{name}: OK" for name in published]
    text = (downloaded / "SUMS").read_text()
    assert text.endswith("\n") and [line.split("  ", 1)[1] for line in text.splitlines()] == published
    assert run.statuses()["SUMS"] == "uploaded"
    sums = next(asset for asset in run.json["assets"] if asset["name"] == "SUMS")
    assert sums["sha256"] == local_sha256(downloaded / "SUMS") and sums["size"] == len(text)
    assert "[SUMS](" in run.files["summary"] and '"name":"SUMS"' in run.files["github_output"]
    assert f"RELEASE_ASSET_COUNT={len(names)}\n" in run.files["dotenv"]


@FORGES
def test_a_rerun_leaves_the_checksums_file_alone(publish, forge, build, forge_name):
    assert publish(forge=forge_name, checksums="SHA256SUMS").code == 0
    before = len(forge.calls())

    run = publish(forge=forge_name, checksums="SHA256SUMS")

    assert run.code == 0, run.log
    assert set(run.statuses().values()) == {"unchanged"}
    assert {method for method, _ in forge.calls()[before:]} == {"GET"}, "only looks (SourceCraft also downloads)"


def test_a_changed_file_replaces_the_checksums_file_which_lists_the_unchanged_too(publish, forge, build, tmp_path):
    assert publish(checksums="SHA256SUMS").code == 0
    (build / "checksums.txt").write_text("rebuilt\n")

    run = publish(checksums="SHA256SUMS")

    assert run.code == 0, run.log
    assert run.statuses() == {
        "checksums.txt": "replaced",
        "tool-linux-amd64.tar.gz": "unchanged",
        "tool-windows-amd64.zip": "unchanged",
        "SHA256SUMS": "replaced",
    }
    assert len(stored(forge)["SHA256SUMS"]) == 1
    downloaded = tmp_path / "downloaded"
    downloaded.mkdir()
    download_release(forge, "gitflic", downloaded)
    assert len(_check("sha256sum", downloaded, "SHA256SUMS")) == 3
    sums = dict(reversed(line.split("  ")) for line in (downloaded / "SHA256SUMS").read_text().splitlines())
    assert sums == {path.name: local_sha256(path) for path in build.iterdir() if path.is_file()}


def test_each_file_is_read_once_for_its_upload_and_its_checksum(publish, forge, build, monkeypatch):
    opened: list[str] = []
    original = Artifact.open

    def counted(self, *args, **kwargs):
        opened.append(self.name)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Artifact, "open", counted)

    run = publish(checksums="SHA512SUMS", checksums_algorithm="sha512")

    assert run.code == 0, run.log
    assert sorted(opened) == sorted(["SHA512SUMS", *(p.name for p in build.iterdir() if p.is_file())])


def test_a_pattern_that_selects_a_file_of_the_same_name_is_an_input_error(publish, forge, build):
    (build / "SHA256SUMS").write_text("old sums\n")

    run = publish(checksums="SHA256SUMS")

    assert run.code == 2
    assert "'checksums'" in run.log and "SHA256SUMS" in run.log
    assert forge.calls() == []


@pytest.mark.parametrize(
    "inputs, words",
    [
        ({"checksums": "sums/SHA256SUMS"}, ["'checksums'", "file name"]),
        ({"checksums": "SUMS", "checksums_algorithm": "md5"}, ["'checksums_algorithm'", "sha512"]),
        ({"checksums": "=?utf-8?Q?sums?="}, ["'checksums'", "name it otherwise"]),
    ],
)
def test_a_bad_checksums_input_is_an_input_error_before_any_request(publish, forge, inputs, words):
    run = publish(**inputs)

    assert run.code == 2
    error = next(line for line in run.log.splitlines() if line.startswith("::error::"))
    assert all(word in error for word in words), error
    assert forge.calls() == []


def test_sourcecraft_cannot_bring_an_existing_checksums_file_up_to_date_and_says_so_first(publish, forge, build):
    assert publish(forge="sourcecraft", files="*.zip", checksums="SHA256SUMS").code == 0
    before = len(forge.calls())

    run = publish(forge="sourcecraft", files="*.zip\n*.gz", checksums="SHA256SUMS")

    assert run.code == 1
    assert "SHA256SUMS" in run.log and "cannot replace it" in run.log
    assert {method for method, _ in forge.calls()[before:]} == {"GET"}
    assert sorted(stored(forge)) == ["SHA256SUMS", "tool-windows-amd64.zip"]


def test_a_dry_run_says_the_checksums_file_would_be_published(publish, forge, build):
    run = publish(checksums="SHA256SUMS", dry_run="true")

    assert run.code == 0, run.log
    assert "publish SHA256SUMS, the sha256 of 3 file(s)" in run.log
    assert forge.releases("acme/tool") == []
