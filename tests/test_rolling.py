"""Rolling releases: ``remove_other_assets`` leaves the release holding exactly this run's files."""

from __future__ import annotations

import re

import pytest
from conftest import REPOSITORY, STEPS, local_sha256, stored

from release_action.forges import forge_class
from release_action.sandbox.state import Fault

ROLLING = {"remove_other_assets": "true"}
#: The forges that can delete an asset, so can keep a rolling release.
DELETING = pytest.mark.parametrize("forge_name", [name for name in STEPS if forge_class(name).can_delete_assets])


def _next_build(dist):
    """The nightly's next build: one file gone, one new, one rebuilt."""
    (dist / "tool-windows-amd64.zip").unlink()
    (dist / "tool-darwin-arm64.tar.gz").write_bytes(b"mac build")
    (dist / "checksums.txt").write_text("new  sums\n")


@DELETING
def test_a_rolling_release_holds_exactly_the_latest_files(publish, forge, dist, forge_name):
    assert publish(forge=forge_name).code == 0
    _next_build(dist)

    run = publish(forge=forge_name, **ROLLING)

    assert run.code == 0, run.log
    assert stored(forge) == {path.name: [local_sha256(path)] for path in dist.iterdir()}
    assert run.statuses() == {
        "tool-linux-amd64.tar.gz": "unchanged",
        "checksums.txt": "replaced",
        "tool-darwin-arm64.tar.gz": "uploaded",
        "tool-windows-amd64.zip": "removed",
    }
    removed = next(asset for asset in run.json["assets"] if asset["status"] == "removed")
    # A removed file's hash is the forge's word for it: none where the forge reports none.
    assert removed["size"] == 200_000 and len(removed["sha256"]) == (
        0 if forge_class(forge_name).hashes_by_download else 64
    )
    dotenv = dict(line.split("=", 1) for line in run.files["dotenv"].splitlines())
    assert dotenv["RELEASE_ASSET_COUNT"] == "3", "the count is of the files the release now holds"
    assert "| removed |" in run.files["summary"]
    upload, delete = (re.compile(STEPS[forge_name][step][1]) for step in ("upload", "delete"))
    file_calls = [method for method, path in forge.calls() if upload.search(path) or delete.search(path)]
    assert file_calls.count("DELETE") == 2, "one for the replaced copy, one for the others"
    assert file_calls[-1] == "DELETE", "the others go only after every upload"


def test_a_rerun_of_a_rolling_release_removes_nothing(publish, forge, dist):
    assert publish(files="*.zip").code == 0
    assert publish(**ROLLING).code == 0
    before = len(forge.calls())

    run = publish(**ROLLING)

    assert run.code == 0, run.log
    assert set(run.statuses().values()) == {"unchanged"}
    assert [method for method, _ in forge.calls()[before:]] == ["GET"]


def test_a_dry_run_lists_what_would_be_removed(publish, forge, dist):
    assert publish().code == 0
    _next_build(dist)
    before = len(forge.calls())

    run = publish(**ROLLING, dry_run="true")

    assert run.code == 0, run.log
    assert "remove tool-windows-amd64.zip (not published by this run)" in run.log
    assert "remove tool-linux" not in run.log
    assert [method for method, _ in forge.calls()[before:]] == ["GET"]
    assert "tool-windows-amd64.zip" in stored(forge)


def test_nothing_is_removed_when_an_upload_fails(publish, forge, dist):
    assert publish().code == 0
    _next_build(dist)
    forge.inject(Fault("status", "POST", r"/file$", status=500, times=5))

    run = publish(**ROLLING, retry_attempts="2")

    assert run.code == 1
    assert "tool-windows-amd64.zip" in stored(forge)
    assert not [call for call in forge.calls() if call[0] == "DELETE"]


def test_a_removal_the_forge_refuses_is_one_sentence_after_the_uploads(publish, forge, dist):
    assert publish().code == 0
    _next_build(dist)
    forge.inject(Fault("status", "DELETE", r"/file$", status=403, times=1, message="no rights"))

    run = publish(**ROLLING, files="*.gz")

    assert run.code == 1
    errors = [line for line in run.log.splitlines() if line.startswith("::error::")]
    assert len(errors) == 1 and "could not be removed" in errors[0] and "checksums.txt" in errors[0], run.log
    assert "tool-darwin-arm64.tar.gz" in stored(forge)


def test_sourcecraft_refuses_a_rolling_release_before_any_request(publish, forge):
    run = publish(forge="sourcecraft", **ROLLING)

    assert run.code == 2
    assert "'remove_other_assets'" in run.log and "SourceCraft" in run.log
    assert forge.calls() == []
    assert forge.releases(REPOSITORY) == []


def test_a_rolling_release_keeps_its_checksums_file(publish, forge, dist):
    assert publish(checksums="SHA256SUMS").code == 0
    _next_build(dist)

    run = publish(**ROLLING, checksums="SHA256SUMS")

    assert run.code == 0, run.log
    assert run.statuses()["SHA256SUMS"] == "replaced"
    assert [name for name, status in run.statuses().items() if status == "removed"] == ["tool-windows-amd64.zip"]
    assert sorted(stored(forge)) == sorted([*(path.name for path in dist.iterdir()), "SHA256SUMS"])
