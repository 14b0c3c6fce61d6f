"""Everything a user can get wrong ends in one clear sentence and a non-zero exit."""

from __future__ import annotations

import pytest
from conftest import REPOSITORY, TOKEN, assert_no_token, run_program


def _only_error_line(log: str) -> str:
    errors = [line for line in log.splitlines() if line.startswith("::error::")]
    assert len(errors) == 1, log
    assert "Traceback" not in log
    return errors[0]


def test_a_bad_token_is_refused_by_the_forge(publish, forge):
    run = publish(token="not-the-right-token")

    assert run.code == 1
    assert "HTTP 401" in _only_error_line(run.log)
    assert_no_token(run.log, token="not-the-right-token")


def test_an_unknown_repository_is_named(publish):
    run = publish(repository="acme/nothing")

    assert run.code == 1
    assert "Repository acme/nothing was not found on GitFlic" in _only_error_line(run.log)


def test_a_repository_the_token_cannot_see_says_so(publish, forge):
    forge.add_project("other/secret", ["v1.0.0"])
    run = publish(repository="other/secret")
    assert run.code == 1
    assert "HTTP 403" in _only_error_line(run.log)


def test_a_missing_git_tag_is_named(publish, forge):
    run = publish(tag_name="v9.9.9")

    assert run.code == 1
    line = _only_error_line(run.log)
    assert "'v9.9.9'" in line and "tag exists" in line
    assert forge.releases(REPOSITORY) == []


@pytest.mark.parametrize(
    "inputs, words",
    [
        ({"files": "*.exe"}, ["'*.exe'", "matched no file"]),
        ({"token": " "}, ["'token'"]),
        ({"repository": "just-a-name"}, ["'repository'", "owner/project"]),
        ({"tag_name": " "}, ["'tag_name'"]),
        ({"api_url": "ftp://forge.example"}, ["'api_url'"]),
        ({"body_path": "/nonexistent/CHANGES.md"}, ["'body_path'", "/nonexistent/CHANGES.md"]),
        ({"verify": "maybe"}, ["'verify'", "maybe"]),
        ({"retry_attempts": "many"}, ["'retry_attempts'"]),
        ({"working_directory": "/nonexistent"}, ["'working_directory'"]),
        ({"forge": "github"}, ["'forge'", "gitflic"]),
    ],
)
def test_bad_input_is_named_before_anything_reaches_the_forge(publish, forge, inputs, words):
    run = publish(**inputs)

    assert run.code == 2
    line = _only_error_line(run.log)
    for word in words:
        assert word in line
    assert forge.calls() == []


def test_a_pattern_matching_only_a_directory_is_an_error(publish, forge, dist):
    (dist / "docs").mkdir()
    run = publish(files="docs")
    assert run.code == 2
    assert "'docs'" in _only_error_line(run.log) and "directories" in run.log
    assert forge.calls() == []


def test_an_unreadable_file_is_named(publish, forge, dist):
    (dist / "broken.tar.gz").symlink_to(dist / "missing-target")
    run = publish(files="*.tar.gz")
    assert run.code == 2
    assert "broken.tar.gz" in _only_error_line(run.log)
    assert forge.calls() == []


def test_two_files_with_one_name_are_refused(publish, forge, dist):
    (dist / "a").mkdir()
    (dist / "a" / "checksums.txt").write_text("other\n")
    run = publish(files="**/checksums.txt")
    assert run.code == 2
    assert "checksums.txt" in _only_error_line(run.log)
    assert forge.calls() == []


def test_unmatched_patterns_may_be_allowed(publish, forge):
    run = publish(files="*.exe\nchecksums.txt", fail_on_unmatched_files="false")
    assert run.code == 0, run.log


def test_the_program_as_ci_runs_it_prints_no_traceback(forge, dist):
    """A separate process, as CI starts it: exit code and output as the user sees them."""
    env = {
        "INPUT_API_URL": forge.api_url("gitflic"),
        "INPUT_TOKEN": TOKEN,
        "INPUT_REPOSITORY": REPOSITORY,
        "INPUT_TAG_NAME": "v7",
        "INPUT_FILES": "*",
        "INPUT_WORKING_DIRECTORY": str(dist),
        "INPUT_RETRY_WAIT_SECONDS": "0",
    }
    missing_tag = run_program(env)
    bad_boolean = run_program({**env, "INPUT_DRY_RUN": "perhaps"})

    assert (missing_tag.returncode, bad_boolean.returncode) == (1, 2)
    for result in (missing_tag, bad_boolean):
        output = result.stdout + result.stderr
        assert "Traceback" not in output
        assert output.strip().splitlines()[-1].startswith("Error: ")
        assert_no_token(output)


def test_on_github_the_token_is_masked_before_anything_else_is_printed(publish):
    run = publish(tag_name="v9.9.9")

    first, *rest = run.log.splitlines()
    assert first == f"::add-mask::{TOKEN}"
    assert_no_token("\n".join(rest))
    assert rest[-1].startswith("::error::")


def test_a_token_with_characters_http_cannot_carry_is_named(publish, forge):
    run = publish(token="токен-с-кириллицей")
    assert run.code == 2
    assert "'token'" in _only_error_line(run.log)
    assert_no_token(run.log, token="токен-с-кириллицей")
    assert forge.calls() == []


def _start_job(forge, dist):
    """The program as CI starts it, in its own process, so that it can be sent SIGTERM."""
    import subprocess
    import sys

    env = {
        "PATH": "/usr/bin:/bin",
        "INPUT_API_URL": forge.api_url("gitflic"),
        "INPUT_TOKEN": TOKEN,
        "INPUT_REPOSITORY": REPOSITORY,
        "INPUT_TAG_NAME": "v1.0.0",
        "INPUT_FILES": "*",
        "INPUT_WORKING_DIRECTORY": str(dist),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "release_action"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def test_a_cancelled_job_stops_cleanly_naming_the_unfinished_uploads(forge, dist):
    import signal
    import time

    forge.state.settings.latency = 1.0  # slow enough to cancel in the middle of the uploads
    job = _start_job(forge, dist)
    deadline = time.monotonic() + 30
    while not any(method == "POST" and path.endswith("/file") for method, path in forge.calls()):
        assert time.monotonic() < deadline and job.poll() is None, "the job never started uploading"
        time.sleep(0.05)
    job.send_signal(signal.SIGTERM)
    output, _ = job.communicate(timeout=30)

    assert job.returncode == 130
    last = output.strip().splitlines()[-1]
    assert last.startswith("Error: Cancelled; these uploads did not finish: ")
    assert "Traceback" not in output
    assert_no_token(output)


def test_a_cancel_during_a_long_retry_wait_stops_within_seconds(forge, dist):
    import signal
    import time

    from release_action.sandbox.state import Fault

    # The forge asks every upload to come back in 40 s: the job is waiting when CI cancels it.
    forge.inject(Fault("status", "POST", r"/file$", status=503, retry_after="40", times=10))
    job = _start_job(forge, dist)
    waited = []
    for line in job.stdout:  # bounded: the job ends by itself after its retries, or when stopped below
        waited.append(line)
        if "retrying in 40.0 s" in line:
            break
    cancelled_at = time.monotonic()
    job.send_signal(signal.SIGTERM)
    output, _ = job.communicate(timeout=30)

    assert job.returncode == 130, "".join(waited) + output
    assert time.monotonic() - cancelled_at < 5
    assert output.strip().splitlines()[-1].startswith("Error: Cancelled")
    assert "Traceback" not in output


def test_an_answer_that_trickles_in_is_cut_off_at_timeout_seconds_and_retried(publish, forge):
    """timeout_seconds bounds a whole answer, not each read: a forge that sends a byte every half second
    (for 30 s here; for ever, as far as a client that waits can tell) is a transient failure, retried."""
    from release_action.sandbox.state import Fault

    forge.inject(Fault("trickle", "GET", r"/release$", seconds=30))
    run = publish(timeout_seconds="2")
    assert run.code == 0, run.log
    assert "no answer in time; retrying" in run.log


def test_a_cancel_while_the_forge_holds_an_answer_exits_130_within_seconds_leaving_nothing(forge, dist, tmp_path):
    import signal
    import subprocess
    import sys
    import threading
    import time

    from release_action.sandbox.state import Fault

    held, release = threading.Event(), threading.Event()

    def hold() -> None:  # the forge keeps the upload's answer; bounded, so a broken run cannot hang the test
        held.set()
        release.wait(30)

    forge.inject(Fault("hold_answer", "POST", r"/file$", during=hold))
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    env = {
        "PATH": "/usr/bin:/bin",
        "TMPDIR": str(temporary),
        "INPUT_API_URL": forge.api_url("gitflic"),
        "INPUT_TOKEN": TOKEN,
        "INPUT_REPOSITORY": REPOSITORY,
        "INPUT_TAG_NAME": "v1.0.0",
        "INPUT_FILES": "*",
        "INPUT_WORKING_DIRECTORY": str(dist),
        "INPUT_CHECKSUMS": "SHA256SUMS",
        "INPUT_TIMEOUT_SECONDS": "60",
    }
    job = subprocess.Popen(
        [sys.executable, "-m", "release_action"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        assert held.wait(30), "the upload never reached the forge"
        cancelled_at = time.monotonic()
        job.send_signal(signal.SIGTERM)
        output, _ = job.communicate(timeout=30)
        took = time.monotonic() - cancelled_at
    finally:
        release.set()
        if job.poll() is None:
            job.kill()
            job.wait()
    assert job.returncode == 130, output
    assert took < 3, f"the job took {took:.1f} s to stop"
    assert output.strip().splitlines()[-1].startswith("Error: Cancelled; these uploads did not finish: ")
    assert "Traceback" not in output
    assert list(temporary.iterdir()) == []


def test_an_answer_nested_past_any_parser_s_depth_is_retried_not_a_bug(publish, forge):
    from release_action.sandbox.state import Fault

    forge.inject(Fault("deep_json", "GET", r"/release$"))
    run = publish()
    assert run.code == 0, run.log
    assert "body that is not JSON" in run.log and "Traceback" not in run.log


def test_a_cancel_while_the_log_cannot_be_written_still_exits_130(forge, tmp_path):
    """SIGTERM arrives while the program is blocked writing a log line (CI reads its output slowly): the
    cancel passes through the logging handler, which would catch an Exception, print the record raw to
    stderr and carry on."""
    import signal
    import subprocess
    import sys
    import time

    folder = tmp_path / "many"
    folder.mkdir()
    for n in range(3000):  # a dry run's lines, far past what a pipe holds unread
        (folder / f"part-{n:04}.bin").write_bytes(b"x")
    env = {
        "PATH": "/usr/bin:/bin",
        "INPUT_API_URL": forge.api_url("gitflic"),
        "INPUT_TOKEN": TOKEN,
        "INPUT_REPOSITORY": REPOSITORY,
        "INPUT_TAG_NAME": "v1.0.0",
        "INPUT_FILES": "*",
        "INPUT_WORKING_DIRECTORY": str(folder),
        "INPUT_DRY_RUN": "true",
    }
    job = subprocess.Popen(
        [sys.executable, "-m", "release_action"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while not any(method == "GET" for method, _ in forge.calls()):  # bounded: 30 s
            assert time.monotonic() < deadline and job.poll() is None, "the job never reached the forge"
            time.sleep(0.05)
        time.sleep(1)  # the lines of the plan fill the pipe, and the next write waits
        job.send_signal(signal.SIGTERM)
        output, errors = job.communicate(timeout=30)
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
    assert job.returncode == 130, output[-500:] + errors
    assert "Logging error" not in errors and "Traceback" not in errors
    assert output.strip().splitlines()[-1].startswith("Error: Cancelled")
