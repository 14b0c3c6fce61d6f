"""When the network or the forge fails: retried, never duplicated, always checked."""

from __future__ import annotations

import time

import pytest
from conftest import REPOSITORY, local_sha256, stored

from release_action.sandbox.state import Fault

UPLOAD = r"/release/[^/]+/file$"
LIST = r"/release$"


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_burst_of_server_errors_is_retried(publish, forge, dist, status):
    forge.inject(
        Fault("status", "GET", LIST, times=2, status=status), Fault("status", "POST", UPLOAD, times=2, status=status)
    )

    run = publish()

    assert run.code == 0, run.log
    assert f"HTTP {status}" in run.log and "retrying" in run.log
    assert stored(forge) == {p.name: [local_sha256(p)] for p in dist.iterdir()}


def test_too_many_requests_waits_as_long_as_the_forge_asks(publish, forge):
    forge.inject(Fault("status", "GET", LIST, status=429, retry_after="1"))

    started = time.monotonic()
    run = publish(files="checksums.txt", retry_wait_seconds="0")

    assert run.code == 0, run.log
    assert time.monotonic() - started >= 1.0
    assert "retrying in 1.0 s" in run.log


def test_a_retry_after_beyond_the_budget_fails_at_once_with_a_sentence(publish, forge):
    forge.inject(Fault("status", "GET", LIST, status=429, retry_after="3600"))

    started = time.monotonic()
    run = publish(retry_max_seconds="30")

    assert run.code == 1
    assert time.monotonic() - started < 10
    [error] = [line for line in run.log.splitlines() if line.startswith("::error::")]
    assert "HTTP 429" in error
    assert "asked to wait 3600 s" in error and "retry_max_seconds (30 s)" in error


@pytest.mark.parametrize("fault", ["reset", "reset_mid_body"])
def test_a_dropped_connection_during_an_upload_is_retried_without_a_duplicate(publish, forge, dist, fault):
    forge.inject(Fault(fault, "POST", UPLOAD, times=2))

    run = publish()

    assert run.code == 0, run.log
    assert stored(forge) == {p.name: [local_sha256(p)] for p in dist.iterdir()}


@pytest.mark.parametrize("fault", ["lost_answer", "truncated", "garbage"])
def test_a_lost_answer_after_the_file_was_stored_makes_no_duplicate(publish, forge, dist, fault):
    forge.inject(Fault(fault, "POST", UPLOAD, times=1))

    run = publish()

    assert run.code == 0, run.log
    assert stored(forge) == {p.name: [local_sha256(p)] for p in dist.iterdir()}
    assert "not sending it again" in run.log
    sent = [
        name for e in forge.exchanges() if e.method == "POST" and e.path.endswith("/file") for name in e.sent_fields
    ]
    assert len(sent) == 3, "a file whose answer was lost is not sent twice"


def test_a_lost_answer_to_creating_the_release_makes_no_second_release(publish, forge):
    forge.state.settings.allow_duplicate_tags = True  # the worst case: the forge would accept a second one
    forge.inject(Fault("lost_answer", "POST", LIST, times=1))

    run = publish()

    assert run.code == 0, run.log
    assert len(forge.releases(REPOSITORY)) == 1


def test_an_answer_slower_than_the_timeout_is_retried_without_a_duplicate(publish, forge, dist):
    forge.inject(Fault("slow", "POST", UPLOAD, times=1, seconds=2.0))

    run = publish(timeout_seconds="0.5")

    assert run.code == 0, run.log
    assert "no answer in time" in run.log
    time.sleep(2.0)  # let the slow request finish its work on the server
    assert stored(forge) == {p.name: [local_sha256(p)] for p in dist.iterdir()}


def test_corrupted_storage_is_caught_removed_and_uploaded_again(publish, forge, dist):
    forge.inject(Fault("corrupt", "POST", UPLOAD, times=1))

    run = publish()

    assert run.code == 0, run.log
    assert "stored" in run.log and "wrongly" in run.log
    assert stored(forge) == {p.name: [local_sha256(p)] for p in dist.iterdir()}


def test_a_forge_that_stays_down_ends_in_one_sentence(publish, forge):
    forge.inject(Fault("status", "*", "", times=100, status=503))

    run = publish(retry_attempts="3")

    assert run.code == 1
    [error] = [line for line in run.log.splitlines() if line.startswith("::error::")]
    assert "HTTP 503" in error and "gave up on GET" in error and "3 attempts" in error


def test_an_unreachable_forge_ends_in_one_sentence(publish):
    run = publish(api_url="http://127.0.0.1:9", retry_attempts="2")

    assert run.code == 1
    assert "connection refused" in run.log


def test_checking_what_landed_shares_the_uploads_retry_budget(publish, forge):
    """Uploads and the re-reads between them all fail: three attempts in all, not three times three."""
    assert publish(files="").code == 0  # the release exists
    forge.inject(Fault("status", "POST", UPLOAD, times=100), Fault("status", "GET", r"/release/[^/]+$", times=100))
    before = len(forge.calls())

    run = publish(files="checksums.txt", retry_attempts="3")

    assert run.code == 1
    assert "gave up on uploading checksums.txt after 3 attempts" in run.log
    calls = [method for method, _ in forge.calls()[before:]]
    assert calls == ["GET", "POST", "GET", "GET"], "list, upload, then one re-read per retry"
