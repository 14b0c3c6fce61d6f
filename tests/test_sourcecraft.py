"""SourceCraft: the same promises through a different API (drafts, no hashes, no deletes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import REPOSITORY, local_sha256, stored

from release_action import outputs
from release_action.sandbox.state import Fault

SC = {"forge": "sourcecraft"}
TAG_PATH = f"/repos/{REPOSITORY}/releases/tag/v1.0.0"
UPLOAD = r"/attachments$"


def _posts(forge) -> list[str]:
    return [path for method, path in forge.calls() if method in ("POST", "PATCH")]


def test_a_new_release_is_a_draft_until_its_files_are_verified_then_published(publish, forge, dist):
    run = publish(**SC, name="Tool 1.0", body="notes")

    assert run.code == 0, run.log
    [release] = forge.releases(REPOSITORY)
    assert (release.title, release.body, release.draft) == ("Tool 1.0", "notes", False)
    assert stored(forge) == {p.name: [local_sha256(p)] for p in dist.iterdir()}
    posts = _posts(forge)
    assert posts[0] == f"/repos/{REPOSITORY}/releases"
    assert posts[-1] == f"{TAG_PATH}/publish", "published last, after every upload"
    assert posts.count(f"{TAG_PATH}/attachments") == 3
    assert run.json["release_url"].endswith(f"/{REPOSITORY}/releases/v1.0.0")


def test_later_cubes_read_the_outputs_from_sourcecraft_env(publish, forge, tmp_path):
    # SourceCraft CI hands every cube the same file; an earlier cube may already have written to it.
    handoff = tmp_path / "sourcecraft.env"
    handoff.write_text("BUILD_VERSION=1.0.0\n")
    run = publish(**SC, env={"SOURCECRAFT_ENV": str(handoff)})

    assert run.code == 0, run.log
    lines = handoff.read_text().splitlines()
    assert lines[0] == "BUILD_VERSION=1.0.0"
    values = dict(line.split("=", 1) for line in lines[1:])
    assert values["RELEASE_ID"] == run.json["release_id"]
    assert values["RELEASE_URL"] == run.json["release_url"]
    assert values["RELEASE_TAG_NAME"] == "v1.0.0"
    assert values["RELEASE_ASSET_COUNT"] == "3"
    assert json.loads(Path(values["RELEASE_ASSETS_FILE"]).read_text())["assets"] == run.json["assets"]


def test_no_value_can_add_a_line_to_the_variables_it_is_written_among():
    hostile = "https://forge.example/r/1\nTOKEN=x\r\u2028EVIL=1\x85\x00end"
    assert outputs.single_line(hostile) == "https://forge.example/r/1 TOKEN=x  EVIL=1  end"


def test_the_draft_input_leaves_it_a_draft(publish, forge):
    run = publish(**SC, draft="true")
    assert run.code == 0, run.log
    assert forge.releases(REPOSITORY)[0].draft is True
    assert not [p for p in _posts(forge) if p.endswith("/publish")]
    assert "left a draft" in run.log


def test_gitflic_refuses_the_draft_input_before_any_request(publish, forge):
    run = publish(draft="true")
    assert run.code == 2
    assert "'draft'" in run.log and "GitFlic" in run.log
    assert forge.calls() == []


def test_a_missing_tag_can_be_made_from_a_branch(publish, forge):
    run = publish(**SC, tag_name="v9.0.0", target_branch="main")
    assert run.code == 0, run.log
    assert "v9.0.0" in forge.tags(REPOSITORY, "sourcecraft")
    assert forge.releases(REPOSITORY)[0].draft is False


def test_an_existing_release_is_patched_only_where_it_differs(publish, forge):
    assert publish(**SC, name="Tool", body="notes").code == 0
    publish(**SC, name="Tool", body="notes")
    assert not [c for c in forge.calls() if c[0] == "PATCH"]

    assert publish(**SC, body="better notes").code == 0
    release = forge.releases(REPOSITORY)[0]
    assert (release.title, release.body) == ("Tool", "better notes")
    assert len([c for c in forge.calls() if c[0] == "PATCH"]) == 1


def test_a_rerun_with_identical_files_uploads_nothing(publish, forge):
    assert publish(**SC).code == 0
    before = len(forge.calls())

    run = publish(**SC)

    assert run.code == 0, run.log
    assert set(run.statuses().values()) == {"unchanged"}
    assert not [c for c in forge.calls()[before:] if c[0] == "POST"]
    assert all(len(copies) == 1 for copies in stored(forge).values())


def test_a_changed_file_cannot_be_replaced_and_fails_before_any_upload(publish, forge, dist):
    assert publish(**SC).code == 0
    (dist / "checksums.txt").write_text("changed\n")
    (dist / "new.txt").write_text("new\n")
    before = len(forge.calls())

    run = publish(**SC)

    assert run.code == 1
    error = [line for line in run.log.splitlines() if line.startswith("::error::")][0]
    assert "checksums.txt" in error and "cannot delete or replace" in error and "web interface" in error
    assert not [c for c in forge.calls()[before:] if c[0] in ("POST", "PATCH")]


@pytest.mark.parametrize(
    "fault",
    [
        Fault("lost_answer", "POST", UPLOAD),
        Fault("truncated", "POST", UPLOAD),
        Fault("status", "POST", UPLOAD, status=503, times=2),
        Fault("reset_mid_body", "POST", UPLOAD),
    ],
    ids=lambda f: f"{f.action}-{f.status}",
)
def test_failed_uploads_are_retried_without_duplicate_assets(publish, forge, dist, fault):
    forge.inject(fault)

    run = publish(**SC)

    assert run.code == 0, run.log
    assert stored(forge) == {p.name: [local_sha256(p)] for p in dist.iterdir()}


def test_the_hash_is_checked_through_the_download_link(publish, forge, dist):
    forge.inject(Fault("corrupt", "POST", UPLOAD))

    run = publish(**SC, files="tool-linux-amd64.tar.gz")

    assert run.code == 1
    error = [line for line in run.log.splitlines() if line.startswith("::error::")][0]
    assert "tool-linux-amd64.tar.gz" in error and "sha256" in error and "web interface" in error
    assert [path for _, path in forge.calls() if "/attachments/" in path], (
        "the stored file's link was fetched to hash it"
    )
    assert forge.releases(REPOSITORY)[0].draft is True, "a release with a bad file is not published"


def test_without_verify_only_the_size_is_checked_and_nothing_is_downloaded(publish, forge, dist):
    forge.inject(Fault("corrupt", "POST", UPLOAD))
    run = publish(**SC, files="tool-linux-amd64.tar.gz", verify="false")
    assert run.code == 0, run.log
    assert not [path for _, path in forge.calls() if "/attachments/" in path]


def test_the_error_body_is_shown_in_full_for_support(publish, forge):
    forge.add_project("other/secret", ["v1.0.0"])
    run = publish(**SC, repository="other/secret")

    assert run.code == 1
    error = [line for line in run.log.splitlines() if line.startswith("::error::")][0]
    assert "HTTP 403" in error and "No access rights" in error
    assert "error_code PERMISSION_DENIED" in error and "request_id " in error and "details " in error


def test_prerelease_is_ignored_with_a_warning(publish, forge):
    run = publish(**SC, prerelease="true")
    assert run.code == 0, run.log
    assert "no pre-release flag" in run.log


@pytest.mark.parametrize("path", [r"/releases$", r"/publish$"], ids=["create", "publish"])
def test_a_lost_answer_to_creating_or_publishing_is_recognised(publish, forge, path):
    forge.inject(Fault("lost_answer", "POST", path))

    run = publish(**SC)

    assert run.code == 0, run.log
    [release] = forge.releases(REPOSITORY)
    assert release.draft is False
