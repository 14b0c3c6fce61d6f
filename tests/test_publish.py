"""Publishing a release as a user sees it: first run, re-runs, replacement, updates, paging."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FORGE_NAMES, REPOSITORY, local_sha256, stored

from release_action.sandbox.state import Fault


def test_a_new_tag_gets_a_release_with_every_file(publish, forge, dist):
    run = publish(name="Tool 1.0", body="First release", prerelease="true")

    assert run.code == 0, run.log
    [release] = forge.releases(REPOSITORY)
    assert (release.tag, release.title, release.body, release.prerelease) == (
        "v1.0.0",
        "Tool 1.0",
        "First release",
        True,
    )
    assert stored(forge) == {p.name: [local_sha256(p)] for p in dist.iterdir()}
    assert run.json["release_id"] == release.id
    assert run.json["release_url"].endswith(f"/project/{REPOSITORY}/release/{release.id}")
    assert set(run.statuses().values()) == {"uploaded"}
    for asset in run.json["assets"]:
        assert asset["sha256"] == local_sha256(dist / asset["name"])
        assert asset["size"] == (dist / asset["name"]).stat().st_size


def test_a_new_release_takes_the_tag_as_title_by_default(publish, forge):
    assert publish().code == 0
    [release] = forge.releases(REPOSITORY)
    assert (release.title, release.body, release.prerelease) == ("v1.0.0", "", False)


def test_a_rerun_uploads_nothing_and_only_looks(publish, forge):
    assert publish().code == 0
    before = len(forge.calls())

    run = publish()

    assert run.code == 0, run.log
    assert set(run.statuses().values()) == {"unchanged"}
    assert forge.calls()[before:] == [("GET", f"/rest-api/project/{REPOSITORY}/release")]
    assert all(len(copies) == 1 for copies in stored(forge).values())


def test_a_changed_file_replaces_the_old_copy_after_the_new_one_is_verified(publish, forge, dist):
    assert publish().code == 0
    (dist / "checksums.txt").write_text("def  tool\n")

    run = publish()

    assert run.code == 0, run.log
    assert run.statuses()["checksums.txt"] == "replaced"
    assert stored(forge)["checksums.txt"] == [local_sha256(dist / "checksums.txt")]
    calls = [method for method, path in forge.calls() if path.endswith("/file")]
    assert calls[-2:] == ["POST", "DELETE"], "the old copy goes only after the new one is stored"


def test_without_overwrite_a_changed_file_fails_before_anything_changes(publish, forge, dist):
    assert publish().code == 0
    (dist / "checksums.txt").write_text("def  tool\n")
    (dist / "new.txt").write_text("new\n")
    before = len(forge.calls())

    run = publish(overwrite_files="false")

    assert run.code == 1
    assert "checksums.txt" in run.log and "overwrite_files" in run.log
    assert [method for method, _ in forge.calls()[before:]] == ["GET"]
    assert "new.txt" not in stored(forge)


def test_an_existing_release_is_updated_only_where_it_differs(publish, forge):
    assert publish(name="Tool", body="notes").code == 0

    publish(name="Tool", body="notes")
    assert not [c for c in forge.calls() if c[0] == "PUT"]

    run = publish(body="better notes")
    assert run.code == 0, run.log
    [release] = forge.releases(REPOSITORY)
    assert (release.title, release.body) == ("Tool", "better notes"), "an unset name keeps the title"
    assert len([c for c in forge.calls() if c[0] == "PUT"]) == 1


def test_the_description_can_come_from_a_file(publish, forge, tmp_path):
    notes = tmp_path / "CHANGES.md"
    notes.write_text("## Changes\n\n- faster\n", encoding="utf-8")
    assert publish(body_path=str(notes)).code == 0
    assert forge.releases(REPOSITORY)[0].body == "## Changes\n\n- faster\n"


def test_the_release_is_found_past_the_first_page(publish, forge):
    forge.state.settings.page_size_cap = 2  # the server ignores the size the client asks for
    forge.add_project(REPOSITORY, [f"v0.{n}" for n in range(7)])
    for n in range(7):
        assert publish(tag_name=f"v0.{n}", files="").code == 0
    pages_before = len(forge.calls())

    run = publish(tag_name="v0.0", files="checksums.txt")

    assert run.code == 0, run.log
    assert len([r for r in forge.releases(REPOSITORY) if r.tag == "v0.0"]) == 1
    lists = [path for method, path in forge.calls()[pages_before:] if method == "GET" and path.endswith("/release")]
    assert len(lists) == 4, "seven releases, two a page: four pages"


def test_a_dry_run_changes_nothing_and_says_what_it_would_do(publish, forge, dist):
    run = publish(dry_run="true")

    assert run.code == 0, run.log
    assert forge.releases(REPOSITORY) == []
    assert "would" in run.log.lower() and "create release v1.0.0" in run.log
    for path in dist.iterdir():
        assert f"upload {path.name}" in run.log


def test_exclusions_and_recursive_patterns_pick_the_files(publish, forge, dist):
    (dist / "sub" / "deeper").mkdir(parents=True)
    (dist / "sub" / "deeper" / "extra.tar.gz").write_bytes(b"x" * 10)
    (dist / "debug.tar.gz").write_bytes(b"y" * 10)

    run = publish(files="**/*.tar.gz, !debug.*\nchecksums.txt")

    assert run.code == 0, run.log
    assert sorted(stored(forge)) == ["checksums.txt", "extra.tar.gz", "tool-linux-amd64.tar.gz"]


def test_an_empty_file_is_published_and_mentioned(publish, forge, dist):
    (dist / "EMPTY").write_bytes(b"")
    run = publish(files="EMPTY")
    assert run.code == 0, run.log
    assert "empty" in run.log
    assert stored(forge) == {"EMPTY": [local_sha256(dist / "EMPTY")]}


def test_outputs_reach_github_gitlab_and_json(publish, forge):
    run = publish(name="multi\nline title")
    assert run.code == 0, run.log

    github = _parse_github_output(run.files["github_output"])
    assert github["release_id"] == run.json["release_id"]
    assert github["tag_name"] == "v1.0.0"
    assert json.loads(github["assets"]) == run.json["assets"]

    dotenv = dict(line.split("=", 1) for line in run.files["dotenv"].splitlines())
    assert dotenv["RELEASE_ID"] == run.json["release_id"]
    assert dotenv["RELEASE_URL"] == run.json["release_url"]
    assert dotenv["RELEASE_ASSET_COUNT"] == "3"
    assert json.loads(Path(dotenv["RELEASE_ASSETS_FILE"]).read_text())["assets"] == run.json["assets"]

    summary = run.files["summary"]
    assert summary.startswith("### Release [v1.0.0](")
    assert summary.count("| uploaded |") == 3
    for asset in run.json["assets"]:  # sizes people read, and digests whole, to compare with sha256sum's
        assert f"| `{asset['sha256']}` |" in summary
    assert "| 293.0 KiB (300000 bytes) |" in summary and "| 10 bytes |" in summary


def test_a_failure_and_a_dry_run_write_the_step_summary_too(publish, forge):
    run = publish(dry_run="true")
    assert run.code == 0, run.log
    assert run.files["summary"].startswith("### Dry run of release v1.0.0: nothing was changed")
    assert r"- upload tool-linux-amd64.tar.gz \(300000 bytes\)" in run.files["summary"]  # Markdown-escaped

    forge.inject(Fault("status", "GET", r"/release$", status=403, message="No access rights to project acme/tool"))
    run = publish()
    assert run.code == 1
    [error] = [line for line in run.log.splitlines() if line.startswith("::error::")]
    assert run.files["summary"].startswith("### release-action failed")
    assert "No access rights to project acme/tool" in run.files["summary"]


@pytest.mark.parametrize(
    "ci, opens, closes",
    [
        ({"GITHUB_ACTIONS": "true"}, "::group::", "::endgroup::"),
        ({"GITHUB_ACTIONS": "false", "GITLAB_CI": "true"}, "\x1b[0Ksection_start:", "\x1b[0Ksection_end:"),
        (
            {"GITHUB_ACTIONS": "false", "CI_SERVER_REST_URL": "https://gitflic.example.test/rest-api"},
            "\x1b[0Ksection_start:",
            "\x1b[0Ksection_end:",
        ),
    ],
)
def test_each_phase_folds_in_the_ci_s_own_way_and_an_error_stays_outside(publish, forge, ci, opens, closes):
    run = publish(env=ci)
    assert run.code == 0, run.log
    lines = run.log.rstrip("\n").split("\n")  # a GitLab section line holds a \r
    assert sum(line.startswith(opens) for line in lines) == sum(line.startswith(closes) for line in lines) == 3

    # Every upload refused: the batch, then the first file sent alone to tell which one.
    forge.inject(Fault("status", "POST", r"/file$", status=415, times=10, message="Unsupported Media Type"))
    run = publish(env=ci, tag_name="v1.1.0")
    lines = run.log.rstrip("\n").split("\n")
    assert run.code == 1
    assert sum(line.startswith(opens) for line in lines) == sum(line.startswith(closes) for line in lines) == 2
    assert "Unsupported Media Type" in lines[-1] and lines[-2].startswith(closes), "the error is outside the fold"


def _parse_github_output(text: str) -> dict[str, str]:
    values, lines = {}, iter(text.splitlines())
    for line in lines:
        name, delimiter = line.split("<<", 1)
        body = []
        for value_line in lines:
            if value_line == delimiter:
                break
            body.append(value_line)
        values[name] = "\n".join(body)
    return values


def test_the_demo_project_url_points_at_the_web_page(publish, forge):
    run = publish()
    assert run.json["release_url"].startswith(forge.url + "/project/"), "the /rest-api base is not the web address"


def test_a_file_that_keeps_arriving_corrupted_fails_naming_it_and_leaves_no_bad_copy(publish, forge, dist):
    forge.inject(Fault("corrupt", "POST", r"/file$", times=10))

    run = publish(files="checksums.txt", retry_attempts="3")

    assert run.code == 1
    assert "checksums.txt" in run.log and "sha256" in run.log
    assert stored(forge) == {}


def test_a_rerun_clears_extra_copies_that_landed_late(publish, forge, dist):
    assert publish(files="checksums.txt").code == 0
    [release] = forge.releases(REPOSITORY)
    original = release.files[0]
    release.files.append(dataclasses.replace(original, id="late-copy"))  # a request finished after its run ended

    run = publish(files="checksums.txt")

    assert run.code == 0, run.log
    assert run.statuses() == {"checksums.txt": "unchanged"}
    assert [f.id for f in forge.releases(REPOSITORY)[0].files] == [original.id]


def test_file_names_in_cyrillic_keep_their_names(publish, forge, dist):
    (dist / "Релиз сборка-1.0.zip").write_bytes(b"\x00" * 1000)
    run = publish(files="Релиз*")
    assert run.code == 0, run.log
    assert stored(forge) == {"Релиз сборка-1.0.zip": [local_sha256(dist / "Релиз сборка-1.0.zip")]}
    assert run.statuses() == {"Релиз сборка-1.0.zip": "uploaded"}


def test_a_long_upload_reports_percent_and_speed(publish, dist, monkeypatch):
    monkeypatch.setattr("release_action.log.PROGRESS_EVERY_SECONDS", 0.0)  # every piece, not every few seconds
    (dist / "big.bin").write_bytes(os.urandom(3 << 20))

    run = publish(files="big.bin")

    assert run.code == 0, run.log
    lines = [line for line in run.log.splitlines() if line.startswith("  big.bin: ")]
    assert "  big.bin: 100% of 3.0 MiB" in "\n".join(lines)
    assert all(line.endswith("MB/s") for line in lines)


@pytest.mark.slow
@pytest.mark.parametrize("forge_name", FORGE_NAMES)
def test_the_readme_demo_runs_against_every_forge_and_keeps_to_its_description(forge_name):
    demo = subprocess.run(
        [sys.executable, "-m", "release_action.sandbox", "demo", "--forge", forge_name, "--contract"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "== Done: 3 uploads in all, second run statuses ['unchanged']." in demo.stdout
    assert "requests and answers checked against the forges' API descriptions; 0 problems." in demo.stdout
