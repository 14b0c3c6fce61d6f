"""Trust on the surfaces a shared runner exposes: git and other users' files, release notes written
around the user's own text, rolling releases, renames, outputs, and the build that lies about time.

Each test is a break that was found by attacking the program, run against the sandbox over real
HTTP (and the real git); it failed before the fix that it names.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import (
    FORGE_NAMES,
    REPOSITORY,
    STEPS,
    TOKEN,
    assert_no_token,
    download_release,
    local_sha256,
    program_block,
    run_program,
    stored,
)
from markdown_it import MarkdownIt

from release_action import history
from release_action.notes import BEGIN, END
from release_action.sandbox.state import Fault

FORGES = pytest.mark.parametrize("forge_name", FORGE_NAMES)
AS_ROOT = pytest.mark.skipif(os.geteuid() != 0, reason="files owned by another user need root")
#: Not this user: the neighbour on a shared runner.
NEIGHBOUR = 4242


def only_error(run) -> str:
    errors = [line for line in run.log.splitlines() if line.startswith("::error::")]
    assert len(errors) == 1 and "Traceback" not in run.log, run.log
    return errors[0]


def _body(forge, tag: str = "v1.0.0") -> str:
    [release] = [r for r in forge.releases(REPOSITORY) if r.tag == tag]
    return release.body


def git(repo: Path, *args: str, env: dict | None = None) -> str:
    people = {
        "GIT_AUTHOR_NAME": "Dev",
        "GIT_AUTHOR_EMAIL": "dev@example.org",
        "GIT_COMMITTER_NAME": "Dev",
        "GIT_COMMITTER_EMAIL": "dev@example.org",
    }
    done = subprocess.run(
        ["git", "-C", str(repo), *args],
        env={**os.environ, **people, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def new_repository(folder: Path, *subjects: str) -> dict[str, str]:
    """A checkout with a v0.9.0 tag, then commits with ``subjects``, tagged v1.0.0: subject -> short hash."""
    folder.mkdir(parents=True, exist_ok=True)
    git(folder, "init", "-q", "-b", "main")
    git(folder, "commit", "--allow-empty", "-q", "-m", "feat: the start")
    git(folder, "tag", "v0.9.0")
    shas = {}
    for subject in subjects:
        git(folder, "commit", "--allow-empty", "-q", "-m", subject)
        shas[subject] = git(folder, "rev-parse", "--short=7", "HEAD")
    git(folder, "tag", "v1.0.0")
    return shas


def signed_commit(repo: Path, subject: str) -> str:
    """A commit carrying a (made-up) signature: ``log.showSignature`` hands such a commit to gpg.program."""
    tree = git(repo, "write-tree")
    parent = git(repo, "rev-parse", "HEAD")
    text = (
        f"tree {tree}\nparent {parent}\nauthor Dev <dev@example.org> 1700000000 +0000\n"
        f"committer Dev <dev@example.org> 1700000000 +0000\ngpgsig -----BEGIN PGP SIGNATURE-----\n \n"
        f" iQEzBAABCAAdFiEE\n -----END PGP SIGNATURE-----\n\n{subject}\n"
    )
    done = subprocess.run(
        ["git", "-C", str(repo), "hash-object", "-t", "commit", "-w", "--stdin"],
        input=text,
        capture_output=True,
        text=True,
        check=True,
    )
    sha = done.stdout.strip()
    git(repo, "update-ref", "refs/heads/main", sha)
    return sha


def planted_program(folder: Path) -> tuple[Path, Path]:
    """A program that leaves a mark, with the environment it saw, whenever anything runs it."""
    mark = folder / "RAN"
    program = folder / "planted.sh"
    program.write_text(f"#!/bin/sh\nenv >> '{mark}'\necho '[GNUPG:] GOODSIG 0 planted output'\ncat >/dev/null\n")
    program.chmod(0o755)
    return program, mark


def plant_every_hook(config_path: Path, program: Path) -> None:
    """Every config setting that makes git run a program or print more than it was asked for."""
    hooks = config_path.parent / "planted-hooks"
    hooks.mkdir(exist_ok=True)
    for hook in ("post-checkout", "reference-transaction", "pre-auto-gc", "post-index-change"):
        (hooks / hook).write_text(f"#!/bin/sh\nexec '{program}'\n")
        (hooks / hook).chmod(0o755)
    with config_path.open("a") as config:
        config.write(f"""
[core]
    fsmonitor = {program}
    pager = {program}
    hooksPath = {hooks}
    sshCommand = {program}
[log]
    showSignature = true
[gpg]
    program = {program}
[gpg "ssh"]
    program = {program}
[diff]
    external = {program}
[pager]
    log = {program}
[alias]
    log = !{program}
""")


# -- git reads the checkout the run is about, and nothing runs from anyone else's ----------------


@AS_ROOT
def test_a_repository_planted_above_the_working_directory_runs_nothing_and_is_refused(
    publish, forge, tmp_path, monkeypatch
):
    """A job without a checkout (GIT_STRATEGY: none, an artifacts-only job) starts below a neighbour's repository."""
    planted = tmp_path / "shared"
    new_repository(planted, "fix: the neighbour's work")
    signed_commit(planted, "feat: signed by nobody")
    git(planted, "tag", "-f", "v1.0.0")
    program, mark = planted_program(tmp_path)
    plant_every_hook(planted / ".git" / "config", program)
    job = planted / "builds" / "job-1"
    job.mkdir(parents=True)
    subprocess.run(["chown", "-R", f"{NEIGHBOUR}:{NEIGHBOUR}", str(planted)], check=True)
    monkeypatch.chdir(job)

    for dry_run in ("true", "false"):
        run = publish(generate_notes="true", files="", dry_run=dry_run)

        assert run.code == 2, run.log
        line = only_error(run)
        assert str(planted) in line and "not named by the CI" in line
    assert not mark.exists(), "a program planted in another user's repository ran"
    assert forge.calls() == []


@AS_ROOT
def test_the_checkout_the_ci_names_is_read_and_its_own_config_runs_nothing(publish, forge, tmp_path, monkeypatch):
    """The CI's workspace, owned by the runner's user, read from a directory that is not a checkout;
    hooks in the checkout's config, the user's global config and the system's run nothing either."""
    workspace = tmp_path / "workspace"
    shas = new_repository(workspace, "fix: a fix")
    signed = signed_commit(workspace, "feat: a signed feature")
    git(workspace, "tag", "-f", "v1.0.0")
    program, mark = planted_program(tmp_path)
    plant_every_hook(workspace / ".git" / "config", program)
    home = tmp_path / "home"
    home.mkdir()
    plant_every_hook(home / ".gitconfig", program)
    subprocess.run(["chown", "-R", "1001:1001", str(workspace)], check=True)
    elsewhere = tmp_path / "artifacts"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    monkeypatch.setenv("GIT_EXTERNAL_DIFF", str(program))
    monkeypatch.setenv("GIT_PAGER", str(program))

    run = publish(generate_notes="true", files="", env={"GITHUB_WORKSPACE": str(workspace)})

    assert run.code == 0, run.log
    assert not mark.exists(), "a program named in a git config ran"
    assert _body(forge) == (
        f"### Features\n\n- a signed feature ({signed[:7]})\n\n### Fixes\n\n- a fix ({shas['fix: a fix']})"
    )
    assert "GNUPG" not in _body(forge) and "planted" not in _body(forge)


def test_git_runs_without_the_token_or_any_input_in_its_environment(forge, tmp_path):
    repo = tmp_path / "project"
    shas = new_repository(repo, "fix: one")
    seen = tmp_path / "git-environment"
    wrapper = tmp_path / "bin"
    wrapper.mkdir()
    real_git = subprocess.run(["sh", "-c", "command -v git"], capture_output=True, text=True).stdout.strip()
    (wrapper / "git").write_text(f"#!/bin/sh\nenv >> '{seen}'\nexec '{real_git}' \"$@\"\n")
    (wrapper / "git").chmod(0o755)
    env = {
        "PATH": f"{wrapper}:{os.environ['PATH']}",
        "INPUT_TOKEN": TOKEN,
        "INPUT_API_URL": forge.api_url("gitflic"),
        "INPUT_REPOSITORY": REPOSITORY,
        "INPUT_TAG_NAME": "v1.0.0",
        "INPUT_GENERATE_NOTES": "true",
        "DEPLOY_PASSWORD": "a secret of another step",
        "GITFLIC_TOKEN": TOKEN,
        "CI_JOB_TOKEN": TOKEN,
    }

    done = run_program(env, cwd=repo)

    assert done.returncode == 0, done.stdout + done.stderr
    environment = seen.read_text()
    assert _body(forge) == f"### Fixes\n\n- one ({shas['fix: one']})"
    assert TOKEN not in environment and "INPUT_" not in environment and "secret" not in environment
    assert_no_token(done.stdout, done.stderr)


@pytest.mark.parametrize(
    "behaviour, script",
    [
        ("hangs", "echo $$ > '{pid}'\nexec sleep 30\n"),
        # Exits at once, but what it started in a session of its own holds git's output open.
        ("leaves a descendant", "setsid sleep 30 &\necho $! > '{pid}'\nexit 0\n"),
    ],
)
def test_a_git_that_does_not_finish_ends_in_one_sentence(publish, forge, tmp_path, monkeypatch, behaviour, script):
    repo = tmp_path / "project"
    new_repository(repo, "fix: one")
    pid_file = tmp_path / "git.pid"
    wrapper = tmp_path / "bin"
    wrapper.mkdir()
    (wrapper / "git").write_text("#!/bin/sh\n" + script.format(pid=pid_file))
    (wrapper / "git").chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrapper}:{os.environ['PATH']}")
    monkeypatch.setattr(history, "GIT_SECONDS", 1.0)
    monkeypatch.chdir(repo)

    started = time.monotonic()
    run = publish(generate_notes="true", files="")
    pid = int(pid_file.read_text())
    left_running = Path(f"/proc/{pid}").exists()
    if left_running:  # not the program's to stop: git started it, in a session of its own
        os.kill(pid, signal.SIGKILL)

    assert run.code == 2, run.log
    assert "did not finish within 1 s" in only_error(run)
    assert time.monotonic() - started < 15
    assert behaviour != "hangs" or not left_running, "the hung git was left running"
    assert forge.calls() == []


@pytest.mark.parametrize("variable", ["GITHUB_WORKSPACE", "CI_PROJECT_DIR"])
def test_a_workspace_that_cannot_be_looked_into_is_one_sentence(publish, forge, tmp_path, monkeypatch, variable):
    monkeypatch.chdir(tmp_path)

    run = publish(generate_notes="true", files="", env={variable: "/" + "a" * 300})

    assert run.code == 2, run.log
    assert "cannot look for a git repository" in only_error(run)
    assert forge.calls() == []


def test_a_partial_clone_config_cannot_start_a_program_through_a_fetch(publish, forge, tmp_path, monkeypatch):
    """A config that makes the checkout a "partial clone" whose remote is a command: a missing object
    would make git fetch it, running the command."""
    repo = tmp_path / "project"
    new_repository(repo, "fix: one")
    program, mark = planted_program(tmp_path)
    for key, value in (
        ("core.repositoryformatversion", "1"),
        ("extensions.partialClone", "origin"),
        ("remote.origin.url", f"ext::{program}"),
        ("remote.origin.promisor", "true"),
        ("protocol.ext.allow", "always"),
    ):
        git(repo, "config", key, value)
    (repo / ".git" / "refs" / "tags" / "v1.0.0").write_text("1234567890123456789012345678901234567890\n")
    monkeypatch.chdir(repo)

    run = publish(generate_notes="true", files="")

    assert run.code == 2, run.log
    assert not mark.exists(), "a fetch ran the remote's command"
    assert forge.calls() == []


@AS_ROOT
@pytest.mark.parametrize(
    "pointer, link",
    [
        ("gitdir: {other}\n", None),
        # git keeps a trailing space in the path: "gitdir: . " names the folder ". ", here a link away.
        ("gitdir: . \n", ". "),
    ],
)
def test_a_git_file_leading_to_another_users_repository_is_refused(
    publish, forge, tmp_path, monkeypatch, pointer, link
):
    other = tmp_path / "other"
    new_repository(other, "fix: theirs")
    subprocess.run(["chown", "-R", f"{NEIGHBOUR}:{NEIGHBOUR}", str(other)], check=True)
    job = tmp_path / "job"
    job.mkdir()
    (job / ".git").write_text(pointer.format(other=other / ".git"))
    if link:
        (job / link).symlink_to(other / ".git")
    monkeypatch.chdir(job)

    run = publish(generate_notes="true", files="")

    assert run.code == 2, run.log
    assert "another user owns" in only_error(run)
    assert forge.calls() == []


def test_control_bytes_and_markup_in_commit_subjects_are_shown_as_text(publish, forge, tmp_path, monkeypatch):
    subjects = [
        "fix: a record\x1eseparator and a unit\x1fseparator",
        "feat: colour \x1b[31mred\x1b[0m in a terminal",
        "fix: <script>alert(1)</script>",
        "feat(ui): <img src=x onerror=alert(1)>",
        "# not a heading",
        "fix: 1. not a list, *not emphasis*, [not](a link) & `not code`",
        "fix: shown \u202eright to left\u202c and $x^2$",
    ]
    repo = tmp_path / "project"
    shas = new_repository(repo, *subjects)
    monkeypatch.chdir(repo)

    run = publish(generate_notes="true", files="")

    assert run.code == 0, run.log
    body = _body(forge)
    assert not any(ord(char) < 32 and char != "\n" for char in body)
    tokens = MarkdownIt("commonmark").enable("strikethrough").parse(body)
    kinds = {token.type for token in tokens} | {child.type for token in tokens for child in token.children or ()}
    assert kinds.isdisjoint({"html_block", "html_inline", "em_open", "link_open", "code_inline", "image"}), kinds
    headings = [tokens[i + 1].content for i, token in enumerate(tokens) if token.type == "heading_open"]
    assert headings == ["Features", "Fixes", "Other"]
    shown = MarkdownIt("commonmark").render(body)
    assert "<script>" not in shown and "<img" not in shown
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in shown
    assert f"# not a heading ({shas['# not a heading']})" in shown
    assert "1. not a list, *not emphasis*, [not](a link) &amp; `not code`" in shown
    assert "a recordseparator and a unitseparator" in shown and "colour [31mred[0m" in shown
    assert "shown right to left and \\$x^2\\$" in body and "\u202e" not in body


# -- release notes: the user's text is never lost, never doubled -------------------------------------


def _hand_edit(forge, text: str, tag: str = "v1.0.0") -> None:
    """What a person does in the forge's web interface."""
    with forge.state.lock:
        [release] = [r for r in forge.releases(REPOSITORY) if r.tag == tag]
        release.body = text


#: What a person may write around the program's block: mentions of the markers, and examples in code.
HAND_WRITTEN = {
    "mentions": (
        f"The notes below sit between `{BEGIN}` and\n`{END}`; this line is mine.\n"
        f"{BEGIN} said inline is not a marker either.\r\nSigned, a person.\n"
    ),
    "examples": (
        f"To add notes by hand, leave these alone:\n\n```\n{BEGIN}\nyour text\n{END}\n```\n\n"
        f"or indented:\n\n    {BEGIN}\n    more\n    {END}\n"
    ),
}


@FORGES
@pytest.mark.parametrize("mode", ["append", "prepend"])
@pytest.mark.parametrize("kind", sorted(HAND_WRITTEN))
def test_hand_written_text_around_the_block_is_kept_whatever_markers_it_holds(publish, forge, forge_name, mode, kind):
    assert publish(forge=forge_name, files="", body="first").code == 0
    written_by_hand = HAND_WRITTEN[kind]
    _hand_edit(forge, written_by_hand)

    for notes in ("notes one", "notes two", "notes two"):
        run = publish(forge=forge_name, files="", body=notes, body_mode=mode)
        assert run.code == 0, run.log

    block = program_block("notes two")
    assert _body(forge) == (f"{written_by_hand}\n{block}" if mode == "append" else f"{block}\n\n{written_by_hand}")


@FORGES
@pytest.mark.parametrize("mode", ["append", "prepend"])
def test_notes_that_mention_the_markers_are_written_once_however_often_the_run_repeats(
    publish, forge, forge_name, mode, tmp_path
):
    (tmp_path / "NOTES.md").write_text(f"Fixed:\n{END}\nstill the notes\n{BEGIN}\nand the end.\n")
    assert publish(forge=forge_name, files="", body="Written by hand.").code == 0
    bodies = []
    for _ in range(3):
        run = publish(forge=forge_name, files="", body_path=str(tmp_path / "NOTES.md"), body_mode=mode)
        assert run.code == 0, run.log
        bodies.append(_body(forge))

    assert bodies[0] == bodies[1] == bodies[2]
    assert bodies[0].count("Written by hand.") == 1 and bodies[0].count("still the notes") == 1
    assert bodies[0].count(BEGIN) == 1 and bodies[0].count("<!-- release-action:end ") == 1


@FORGES
def test_a_whole_block_quoted_in_code_is_kept_and_the_real_one_updated(publish, forge, forge_name):
    assert publish(forge=forge_name, files="", body="Intro.").code == 0
    assert publish(forge=forge_name, files="", body="v1 notes", body_mode="append").code == 0
    quoted = f"\n\nHow our notes look:\n```\n{program_block('example notes')}\n```\n"
    _hand_edit(forge, _body(forge) + quoted)

    assert publish(forge=forge_name, files="", body="v2 notes", body_mode="append").code == 0

    assert _body(forge) == f"Intro.\n\n{program_block('v2 notes')}{quoted}"


@FORGES
def test_a_block_of_an_earlier_version_is_replaced_in_place(publish, forge, forge_name):
    assert publish(forge=forge_name, files="", body="first").code == 0
    _hand_edit(forge, f"Intro\rwith a lone CR\n\n{BEGIN}\nold notes\n{END}\n\nSigned.")

    for _ in range(2):
        assert publish(forge=forge_name, files="", body="new notes", body_mode="append").code == 0

    assert _body(forge) == f"Intro\rwith a lone CR\n\n{program_block('new notes')}\n\nSigned."


@FORGES
def test_replace_writes_the_text_byte_for_byte_even_when_it_mentions_the_markers(publish, forge, forge_name):
    text = f"Our notes use {BEGIN}\n{END}\nlike this."

    assert publish(forge=forge_name, files="", body=text).code == 0

    assert _body(forge) == text


@FORGES
@pytest.mark.parametrize("mode", ["replace", "append", "prepend"])
def test_a_forge_that_turns_crlf_into_lf_gets_no_update_on_a_rerun(publish, forge, forge_name, mode):
    forge.state.settings.line_endings = "lf"
    notes = "Line one.\r\nLine two.\r\n"  # a body input from a web form, say
    assert publish(forge=forge_name, files="", body="By hand.\r\nSecond line.").code == 0
    assert publish(forge=forge_name, files="", body=notes, body_mode=mode).code == 0
    before = len(forge.calls())

    again = publish(forge=forge_name, files="", body=notes, body_mode=mode)

    assert again.code == 0, again.log
    assert {method for method, _ in forge.calls()[before:]} == {"GET"}, forge.calls()[before:]
    assert "up to date" in again.log


# -- rolling releases never empty themselves --------------------------------------------------------


@pytest.mark.parametrize("dry_run", ["false", "true"])
def test_an_empty_build_does_not_empty_a_rolling_release(publish, forge, dist, tmp_path, dry_run):
    assert publish(tag_name="v1.0.0", remove_other_assets="true", checksums="SHA256SUMS").code == 0
    kept = stored(forge)
    empty = tmp_path / "empty-build"
    empty.mkdir()
    before = len(forge.calls())

    run = publish(
        working_directory=str(empty),
        remove_other_assets="true",
        fail_on_unmatched_files="false",
        checksums="SHA256SUMS",
        dry_run=dry_run,
    )

    assert run.code == 2, run.log
    line = only_error(run)
    assert "remove_other_assets" in line and "selects no file" in line and "nothing was changed" in line
    assert forge.calls()[before:] == []
    assert stored(forge) == kept


@FORGES
def test_a_checksums_file_is_never_published_empty(publish, forge, forge_name, tmp_path):
    empty = tmp_path / "empty-build"
    empty.mkdir()

    run = publish(
        forge=forge_name, working_directory=str(empty), fail_on_unmatched_files="false", checksums="SHA256SUMS"
    )

    assert run.code == 0, run.log
    assert "no checksums file is written" in run.log
    [release] = forge.releases(REPOSITORY)
    assert release.files == []


# -- renames -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", [".", "..", " .. ", "\u200b", "\ufeff", "x\u202egpj.exe"])
def test_a_rename_to_dot_or_dot_dot_is_refused_before_any_request(publish, forge, dist, target):
    run = publish(files=f"tool-linux-amd64.tar.gz#{target}")

    assert run.code == 2, run.log
    assert any(words in only_error(run) for words in ("not '.' or '..'", "no visible character", "bidirectional"))
    assert forge.calls() == []


@FORGES
def test_a_rename_target_with_an_escaped_comma_is_published_with_the_comma(publish, forge, dist, forge_name):
    run = publish(forge=forge_name, files=r"tool-linux-amd64.tar.gz#tool\,linux.tar.gz, checksums.txt")

    assert run.code == 0, run.log
    assert sorted(stored(forge)) == ["checksums.txt", "tool,linux.tar.gz"]
    assert stored(forge)["tool,linux.tar.gz"] == [local_sha256(dist / "tool-linux-amd64.tar.gz")]


# -- outputs for later steps cannot be broken or injected --------------------------------------------


def test_sourcecraft_env_and_github_output_start_a_new_line_after_an_earlier_steps_last_line(publish, forge, tmp_path):
    # The earlier step's last line has no line break.
    earlier_cube = tmp_path / "sourcecraft.env"
    earlier_cube.write_text("BUILD_VERSION=1.2.3")
    earlier_step = tmp_path / "github_output"
    earlier_step.write_text("version=1.2.3")

    run = publish(forge="sourcecraft", env={"SOURCECRAFT_ENV": str(earlier_cube), "GITHUB_OUTPUT": str(earlier_step)})

    assert run.code == 0, run.log
    lines = earlier_cube.read_text().splitlines()
    assert lines[0] == "BUILD_VERSION=1.2.3"
    assert dict(line.split("=", 1) for line in lines)["RELEASE_ID"] == run.json["release_id"]
    lines = earlier_step.read_text().splitlines()
    assert lines[0] == "version=1.2.3" and lines[1].startswith("release_id<<ghadelimiter_")


@FORGES
def test_a_token_the_forge_echoes_in_a_successful_answer_reaches_no_output(publish, forge, dist, forge_name, tmp_path):
    environment, cube_outputs = tmp_path / "sourcecraft.env", tmp_path / "sourcecraft.output"
    upload = STEPS[forge_name]["upload"][1]
    forge.inject(Fault("echo_token", "POST", upload, times=10), Fault("echo_token", "GET", "", times=50))

    # The publish fixture checks the log, $GITHUB_OUTPUT, the step summary, json_file and dotenv_file.
    run = publish(forge=forge_name, env={"SOURCECRAFT_ENV": str(environment), "SOURCECRAFT_OUTPUT": str(cube_outputs)})

    assert run.code == 0, run.log
    assert_no_token(environment.read_text(), cube_outputs.read_text())
    links = [asset["url"] for asset in run.json["assets"]]
    assert "***" in links, "a link that carried the token is replaced whole, not left half a link"
    assert "access_token" not in run.files["json"] + run.files["github_output"]
    assert sorted(stored(forge)) == sorted(path.name for path in dist.iterdir())


def test_a_token_a_forge_echoes_into_a_removed_files_hash_reaches_no_output(publish, forge, dist):
    assert publish().code == 0
    (dist / "checksums.txt").unlink()
    forge.inject(Fault("echo_token", "GET", r"/release", times=50))

    run = publish(remove_other_assets="true")  # the fixture checks every output for the token

    assert run.code == 0, run.log
    assert run.statuses()["checksums.txt"] == "removed"
    removed = next(asset for asset in run.json["assets"] if asset["status"] == "removed")
    assert removed["sha256"] == ""


def test_a_forge_link_full_of_markup_cannot_write_into_the_step_summary(publish, forge):
    forge.state.public_url += "/x\n\n# Release compromised\t<img src=https://evil.example/p.png>"

    run = publish()

    assert run.code == 0, run.log
    summary = run.files["summary"]
    assert "<img" not in summary and "\n# " not in summary and "\t" not in summary
    assert len(summary.splitlines()) == 2 + 2 + 3 + 1  # heading, blank, table head, three files, blank


def test_a_token_a_forge_echoes_where_its_words_are_cut_is_not_shown_in_part(publish, forge):
    forge.inject(
        Fault("status", "POST", r"/release$", status=400, message="x" * 180 + f"invalid token {TOKEN}", code="boot")
    )  # Spring Boot's error JSON, whose message is cut at 200 characters

    run = publish()

    assert run.code == 1, run.log
    assert TOKEN[:6] not in only_error(run) and "***…" in only_error(run)


# -- the build that lies about time ------------------------------------------------------------------


@FORGES
def test_a_same_size_rewrite_during_the_upload_with_the_mtime_set_back_is_never_published(
    publish, forge, forge_name, tmp_path
):
    build = tmp_path / "build"
    build.mkdir()
    artifact = build / "image.bin"
    artifact.write_bytes(b"A" * (40 << 20))
    epoch = 1_700_000_000
    os.utime(artifact, (epoch, epoch))  # SOURCE_DATE_EPOCH, as reproducible builds set it

    def rewrite_in_place() -> None:
        with artifact.open("r+b") as handle:
            handle.write(b"B" * (40 << 20))
        os.utime(artifact, (epoch, epoch))

    upload = STEPS[forge_name]["upload"][1]
    forge.inject(Fault("pause_mid_body", "POST", upload, during=rewrite_in_place))

    run = publish(
        forge=forge_name, working_directory=str(build), files="*", checksums="SHA256SUMS", timeout_seconds="30"
    )

    assert run.code == 1, run.log
    assert str(artifact) in only_error(run) and "changed while it was being published" in only_error(run)
    [release] = forge.releases(REPOSITORY)
    assert release.files == [], "a mixed file, or checksums vouching for one, was stored"

    again = publish(
        forge=forge_name, working_directory=str(build), files="*", checksums="SHA256SUMS", timeout_seconds="30"
    )
    assert again.code == 0, again.log
    assert stored(forge)["image.bin"] == [local_sha256(artifact)]
    download = tmp_path / "download"
    download.mkdir()
    download_release(forge, forge_name, download)
    check = subprocess.run(["sha256sum", "-c", "--strict", "SHA256SUMS"], cwd=download, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


# -- GitFlic's job token --------------------------------------------------------------------------------


JOB_TOKEN = "job-token-5f2e8d1c"


@pytest.mark.parametrize(
    "refusal",
    [
        Fault("status", "POST", r"/release$", status=500, times=10, message="The given id must not be null"),
        Fault("status", "POST", r"/release$", status=403, times=10, message="Access denied"),
        None,  # the sandbox's job token itself: Spring Boot's error JSON, the same words
    ],
)
def test_a_change_refused_to_the_job_token_names_gitflic_token(publish, forge, refusal):
    forge.add_job_token(REPOSITORY, JOB_TOKEN)
    if refusal is not None:
        forge.inject(refusal)

    run = publish(
        token="", retry_attempts="2", env={"CI_JOB_TOKEN": JOB_TOKEN, "CI_SERVER_REST_URL": forge.api_url("gitflic")}
    )

    assert run.code == 1, run.log
    line = only_error(run)
    assert "CI_JOB_TOKEN" in line and "GITFLIC_TOKEN" in line and "release rights" in line
    assert_no_token(run.log, token=JOB_TOKEN)
