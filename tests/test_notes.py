"""Release notes: a changelog's section, notes generated from git history, and body_mode."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import FORGE_NAMES, REPOSITORY, program_block

from release_action.notes import BEGIN

FORGES = pytest.mark.parametrize("forge_name", FORGE_NAMES)

#: The text under the 1.2.0 heading: a '#' line in a code block and a subsection belong to it.
NOTES_1_2_0 = """\
### Added

- Uploads resume ([#12]).
- A `--quiet` flag:

  ```sh
  # a comment, not a heading
  tool --quiet
  ```

### Fixed

- Paging past 100 releases."""

CHANGELOG = f"""\
# Changelog

All notable changes.

## [Unreleased]

- work in progress

## [1.2.0] - 2026-01-05

{NOTES_1_2_0}

## [1.1.0] - 2025-12-01

- Older work ([#7]).

[Unreleased]: https://example.org/compare/v1.2.0...HEAD
[1.2.0]: https://example.org/compare/v1.1.0...v1.2.0
[#12]: https://example.org/issues/12
[#7]: https://example.org/issues/7
"""

#: The section as the release gets it: the definition it uses comes along, the others stay behind.
SECTION_1_2_0 = NOTES_1_2_0 + "\n\n[#12]: https://example.org/issues/12"


def _body(forge, tag: str = "v1.0.0") -> str:
    [release] = [r for r in forge.releases(REPOSITORY) if r.tag == tag]
    return release.body


def _error(run) -> str:
    errors = [line for line in run.log.splitlines() if line.startswith("::error::")]
    assert len(errors) == 1 and "Traceback" not in run.log, run.log
    return errors[0]


# -- the changelog ---------------------------------------------------------------


@FORGES
def test_the_changelog_section_for_the_tag_becomes_the_body(publish, forge, tmp_path, forge_name):
    forge.add_project(REPOSITORY, ["v1.2.0"])
    (tmp_path / "CHANGELOG.md").write_text(CHANGELOG)

    run = publish(forge=forge_name, tag_name="v1.2.0", changelog=str(tmp_path / "CHANGELOG.md"))

    assert run.code == 0, run.log
    assert _body(forge, "v1.2.0") == SECTION_1_2_0


@pytest.mark.parametrize(
    "heading, tag",
    [
        ("## [1.2.0] - 2026-01-05", "v1.2.0"),
        ("## v1.2.0", "v1.2.0"),
        ("## v1.2.0", "1.2.0"),
        ("# 1.2.0", "v1.2.0"),
        ("## 1.2.0 (2026-01-05)", "1.2.0"),
        ("1.2.0 - 2026-01-05\n------------------", "v1.2.0"),
    ],
)
def test_each_common_heading_shape_is_found_with_or_without_v(publish, forge, tmp_path, heading, tag):
    forge.add_project(REPOSITORY, [tag])
    level = "#" * (heading.count("#") or 2)
    (tmp_path / "CHANGES.md").write_text(f"# History\n\n{heading}\n\n- the change\n\n{level} 1.1.0\n\n- older\n")

    run = publish(tag_name=tag, changelog=str(tmp_path / "CHANGES.md"), files="")

    assert run.code == 0, run.log
    assert _body(forge, tag) == "- the change"


def test_the_last_section_ends_before_the_link_definitions(publish, forge, tmp_path):
    forge.add_project(REPOSITORY, ["v1.1.0"])
    (tmp_path / "CHANGELOG.md").write_text(CHANGELOG)

    assert publish(tag_name="v1.1.0", changelog=str(tmp_path / "CHANGELOG.md"), files="").code == 0

    assert _body(forge, "v1.1.0") == "- Older work ([#7]).\n\n[#7]: https://example.org/issues/7"


def test_a_missing_section_names_the_changelog_and_its_versions_before_any_request(publish, forge, tmp_path):
    (tmp_path / "CHANGELOG.md").write_text(CHANGELOG)

    run = publish(tag_name="v1.3.0", changelog=str(tmp_path / "CHANGELOG.md"))

    assert run.code == 2
    error = _error(run)
    assert "CHANGELOG.md" in error and "v1.3.0" in error and "1.2.0, 1.1.0" in error
    assert forge.calls() == []


def test_a_missing_changelog_is_named_before_any_request(publish, forge, tmp_path):
    run = publish(changelog=str(tmp_path / "CHANGELOG.md"))

    assert run.code == 2
    assert "'changelog'" in _error(run) and "does not exist" in _error(run)
    assert forge.calls() == []


@pytest.mark.parametrize("other", [{"body": "notes"}, {"body_path": "CHANGES.md"}])
def test_a_changelog_with_a_body_is_an_input_error(publish, forge, tmp_path, other, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "CHANGES.md").write_text("notes\n")
    (tmp_path / "CHANGELOG.md").write_text(CHANGELOG)

    run = publish(changelog="CHANGELOG.md", **other)

    assert run.code == 2
    assert "'changelog'" in _error(run) and "'body'" in _error(run)
    assert forge.calls() == []


# -- body_mode -------------------------------------------------------------------


@FORGES
def test_append_adds_the_text_once_and_a_rerun_adds_nothing(publish, forge, forge_name):
    assert publish(forge=forge_name, body="Written by hand.", files="").code == 0

    first = publish(forge=forge_name, body="- generated line", body_mode="append", files="")
    changes = len([c for c in forge.calls() if c[0] in ("PUT", "PATCH")])
    again = publish(forge=forge_name, body="- generated line", body_mode="append", files="")

    assert first.code == again.code == 0, first.log + again.log
    assert _body(forge) == "Written by hand.\n\n" + program_block("- generated line")
    assert len([c for c in forge.calls() if c[0] in ("PUT", "PATCH")]) == changes, "a re-run changes nothing"


def test_new_text_replaces_the_marked_block_and_keeps_the_rest(publish, forge):
    assert publish(body="Written by hand.", files="").code == 0
    assert publish(body="- first build", body_mode="prepend", files="").code == 0

    assert publish(body="- second build", body_mode="prepend", files="").code == 0

    assert _body(forge) == program_block("- second build") + "\n\nWritten by hand."


def test_keep_sets_the_body_only_when_the_release_is_created(publish, forge):
    assert publish(body="First notes.", body_mode="keep", files="").code == 0
    assert _body(forge) == "First notes."

    assert publish(body="Other notes.", body_mode="keep", files="").code == 0

    assert _body(forge) == "First notes."
    assert not [c for c in forge.calls() if c[0] == "PUT"]


def test_replace_is_the_default(publish, forge):
    assert publish(body="First notes.", files="").code == 0
    assert publish(body="Other notes.", files="").code == 0
    assert _body(forge) == "Other notes."


def test_an_unknown_body_mode_is_an_input_error(publish, forge):
    run = publish(body_mode="merge")
    assert run.code == 2
    assert "'body_mode'" in _error(run) and "append" in _error(run)
    assert forge.calls() == []


def test_a_dry_run_shows_the_notes_and_changes_nothing(publish, forge):
    assert publish(body="Written by hand.", files="").code == 0
    before = len(forge.calls())

    run = publish(body="- the new line", body_mode="append", dry_run="true", files="")

    assert run.code == 0, run.log
    assert "update release v1.0.0: body" in run.log
    assert "    - the new line" in run.log and f"    {BEGIN}" not in run.log
    assert [method for method, _ in forge.calls()[before:]] == ["GET"]
    assert _body(forge) == "Written by hand."


# -- notes generated from git history ----------------------------------------------


def _git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Dev",
        "GIT_AUTHOR_EMAIL": "dev@example.org",
        "GIT_COMMITTER_NAME": "Dev",
        "GIT_COMMITTER_EMAIL": "dev@example.org",
    }
    done = subprocess.run(["git", "-C", str(repo), *args], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _commit(repo: Path, message: str) -> str:
    _git(repo, "commit", "--allow-empty", "-q", "-m", message)
    return _git(repo, "rev-parse", "--short", "HEAD")


@pytest.fixture
def repo(tmp_path: Path, monkeypatch) -> Path:
    """A project's clone: v0.9.0, then the work released as v1.0.0."""
    folder = tmp_path / "project"
    folder.mkdir()
    _git(folder, "init", "-q", "-b", "main")
    _commit(folder, "feat: the first feature")
    _git(folder, "tag", "-a", "v0.9.0", "-m", "0.9.0")
    monkeypatch.chdir(folder)
    return folder


@FORGES
def test_generated_notes_group_the_commits_since_the_previous_tag(publish, forge, repo, forge_name):
    shas = {
        "feat": _commit(repo, "feat(upload): resume cut uploads"),
        "fix": _commit(repo, "fix: page past 100 releases"),
        "bang": _commit(repo, "feat(api)!: drop the v1 endpoint"),
        "footer": _commit(repo, "refactor: new config\n\nBREAKING CHANGE: the old keys are gone"),
        "chore": _commit(repo, "chore: bump pins"),
        "plain": _commit(repo, "Tidy the README"),
    }
    _git(repo, "tag", "v1.0.0")

    run = publish(forge=forge_name, generate_notes="true", files="")

    assert run.code == 0, run.log
    assert _body(forge) == (
        "### Breaking changes\n\n"
        f"- **api:** drop the v1 endpoint ({shas['bang']})\n"
        f"- new config ({shas['footer']})\n\n"
        "### Features\n\n"
        f"- **upload:** resume cut uploads ({shas['feat']})\n\n"
        "### Fixes\n\n"
        f"- page past 100 releases ({shas['fix']})\n\n"
        "### Other\n\n"
        f"- bump pins ({shas['chore']})\n"
        f"- Tidy the README ({shas['plain']})"
    )


def test_the_first_tag_takes_the_whole_history_and_merges_are_left_out(publish, forge, repo):
    _git(repo, "tag", "-d", "v0.9.0")
    _git(repo, "checkout", "-q", "-b", "topic")
    topic = _commit(repo, "fix: on a branch")
    _git(repo, "checkout", "-q", "main")
    _git(repo, "merge", "-q", "--no-ff", "-m", "Merge branch 'topic'", "topic")
    _git(repo, "tag", "v1.0.0")

    assert publish(generate_notes="true", files="").code == 0

    body = _body(forge)
    assert "the first feature" in body and f"on a branch ({topic})" in body and "Merge" not in body


def test_the_previous_tag_is_found_across_a_merge_and_tags_on_the_same_commit_do_not_count(publish, forge, repo):
    _git(repo, "checkout", "-q", "-b", "release")
    _commit(repo, "fix: before the branch tag")
    _git(repo, "tag", "v0.9.1")
    _git(repo, "checkout", "-q", "main")
    on_main = _commit(repo, "feat: on main")
    _git(repo, "merge", "-q", "--no-ff", "-m", "Merge release", "release")
    newest = _commit(repo, "fix: after the merge")
    _git(repo, "tag", "v1.0.0")
    _git(repo, "tag", "latest")

    assert publish(generate_notes="true", files="").code == 0

    # v0.9.1, on the merged branch, is nearer than v0.9.0; "latest" names the release's own commit.
    assert _body(forge) == f"### Features\n\n- on main ({on_main})\n\n### Fixes\n\n- after the merge ({newest})"


def test_generated_notes_follow_the_changelog_section_and_append_once(publish, forge, repo):
    forge.add_project(REPOSITORY, ["v1.2.0"])
    (repo / "CHANGELOG.md").write_text(CHANGELOG)
    sha = _commit(repo, "fix: a last fix")
    _git(repo, "tag", "v1.2.0")
    assert publish(tag_name="v1.2.0", body="By hand.", files="").code == 0
    inputs = dict(tag_name="v1.2.0", changelog="CHANGELOG.md", generate_notes="true", body_mode="append", files="")

    assert publish(**inputs).code == 0
    assert publish(**inputs).code == 0

    expected = "By hand.\n\n" + program_block(f"{SECTION_1_2_0}\n\n### Fixes\n\n- a last fix ({sha})")
    assert _body(forge, "v1.2.0") == expected


def test_a_shallow_clone_says_how_to_fetch_the_history_before_any_request(publish, forge, repo, tmp_path, monkeypatch):
    _commit(repo, "fix: one more")
    _git(repo, "tag", "v1.0.0")
    _git(tmp_path, "clone", "-q", "--depth", "1", "--branch", "v1.0.0", repo.as_uri(), "shallow")
    monkeypatch.chdir(tmp_path / "shallow")

    run = publish(generate_notes="true")

    assert run.code == 2
    error = _error(run)
    assert "shallow" in error and "fetch-depth: 0" in error and "GIT_DEPTH: 0" in error
    assert forge.calls() == []


def test_a_tag_missing_from_the_clone_is_named(publish, forge, repo):
    run = publish(generate_notes="true")
    assert run.code == 2
    assert "v1.0.0" in _error(run) and "fetch" in _error(run)
    assert forge.calls() == []


def test_outside_a_repository_generated_notes_are_an_input_error(publish, forge, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = publish(generate_notes="true")
    assert run.code == 2
    assert "not in one" in _error(run)
    assert forge.calls() == []


def test_without_git_generated_notes_are_one_sentence(publish, forge, repo, tmp_path, monkeypatch):
    _git(repo, "tag", "v1.0.0")
    (tmp_path / "empty-bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))

    run = publish(generate_notes="true")

    assert run.code == 2
    assert "needs the git program" in _error(run)
    assert forge.calls() == []


@pytest.mark.skipif(os.geteuid() != 0, reason="making a checkout owned by another user needs root")
def test_a_checkout_owned_by_another_user_is_read_as_in_a_container(publish, forge, repo):
    """GitHub runs container actions as root on a workspace that belongs to the runner's user."""
    sha = _commit(repo, "fix: in the container")
    _git(repo, "tag", "v1.0.0")
    subprocess.run(["chown", "-R", "1001:1001", str(repo)], check=True)
    refused = subprocess.run(["git", "-C", str(repo), "log", "-1"], capture_output=True, text=True)
    assert "dubious ownership" in refused.stderr, "plain git refuses this checkout"

    assert publish(generate_notes="true", files="").code == 0

    assert _body(forge) == f"### Fixes\n\n- in the container ({sha})"
