"""What a re-run changes: nothing, when the files are the same. A retried GitLab or GitFlic job (a new
CI_JOB_URL), a new GitHub run or attempt of the same commit, and a job retried after its first attempt
failed before publishing the draft all find the provenance, checksums, signatures and release attestation
they would write already there, on every forge."""

from __future__ import annotations

import pytest
from conftest import FORGE_NAMES, GITVERSE_SHA, REPOSITORY, STEPS, stored

from release_action.sandbox.state import Fault

FORGES = pytest.mark.parametrize("forge_name", FORGE_NAMES)
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def gitlab_job(number: int) -> dict[str, str]:
    return {
        "GITHUB_ACTIONS": "",
        "CI_JOB_URL": f"https://gitlab.example/acme/tool/-/jobs/{number}",
        "CI_PROJECT_URL": "https://gitlab.example/acme/tool",
        "CI_COMMIT_SHA": COMMIT,
        "CI_CONFIG_PATH": ".gitlab-ci.yml",
        "CI_COMMIT_REF_NAME": "v1.0.0",
    }


def github_run(run_id: int, attempt: int) -> dict[str, str]:
    return {
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "acme/tool",
        "GITHUB_RUN_ID": str(run_id),
        "GITHUB_RUN_ATTEMPT": str(attempt),
        "GITHUB_SHA": COMMIT,
        "GITHUB_REF": "refs/tags/v1.0.0",
        "GITHUB_WORKFLOW_REF": "acme/tool/.github/workflows/release.yml@refs/tags/v1.0.0",
    }


def signed(key, forge_name: str, **inputs: str) -> dict[str, str]:
    commit = {"target_branch": GITVERSE_SHA} if forge_name == "gitverse" else {}
    return {
        "forge": forge_name,
        "checksums": "SHA256SUMS",
        "provenance": "true",
        "signing_key": key.secret,
        "signing_passphrase": key.passphrase or "",
        **commit,
        **inputs,
    }


@FORGES
@pytest.mark.parametrize("which", ["openpgp", "minisign"])
@pytest.mark.parametrize(
    "first, again",
    [(gitlab_job(7), gitlab_job(8)), (github_run(42, 1), github_run(42, 2)), (github_run(42, 1), github_run(43, 1))],
    ids=["a retried GitLab job", "a GitHub re-run attempt", "a new GitHub run"],
)
def test_another_run_of_the_same_build_changes_nothing(publish, forge, pgp, minisign, forge_name, which, first, again):
    key = pgp["ed25519"] if which == "openpgp" else minisign["unencrypted"]
    published = publish(env=first, **signed(key, forge_name))
    assert published.code == 0, published.log
    before, kept = len(forge.calls()), stored(forge)

    run = publish(env=again, **signed(key, forge_name))

    assert run.code == 0, run.log
    assert set(run.statuses().values()) == {"unchanged"}, run.statuses()
    assert {method for method, _ in forge.calls()[before:]} == {"GET"}
    assert stored(forge) == kept


@pytest.mark.parametrize("forge_name", ["sourcecraft", "gitea", "gitverse"])
def test_a_draft_left_by_a_failed_first_attempt_is_published_by_the_retry(publish, forge, minisign, forge_name):
    key = minisign["unencrypted"]
    method, path = STEPS[forge_name]["publish"]
    forge.inject(Fault("status", method, path, status=500, times=1000))
    failed = publish(env=gitlab_job(7), retry_attempts="1", **signed(key, forge_name))
    assert failed.code == 1, failed.log
    [draft] = forge.releases(REPOSITORY)
    assert draft.draft and "release.intoto.jsonl" in stored(forge)
    forge.state.faults.clear()
    kept = stored(forge)

    run = publish(env=gitlab_job(8), **signed(key, forge_name))

    assert run.code == 0, run.log
    assert set(run.statuses().values()) == {"unchanged"}, run.statuses()
    assert stored(forge) == kept
    [release] = forge.releases(REPOSITORY)
    assert not release.draft
