"""Verification: a stored copy with a wrong SHA-256 or a wrong size is caught on every forge.

The program compares the stored size, name and SHA-256 with the local file; the
sandbox can store a flipped byte (same size, other hashes) or a stray byte (other
size, hashes of what arrived), so each check is proved on its own.
"""

from __future__ import annotations

import pytest
from conftest import REPOSITORY, STEPS, local_sha256, stored

from release_action.forges import forge_class
from release_action.sandbox.state import Fault

UPLOADS = {forge: steps["upload"][1] for forge, steps in STEPS.items()}
#: What the error names for each storage fault.
WRONG = {"corrupt": "sha256", "wrong_size": "bytes instead of"}


def _error(log: str) -> str:
    return [line for line in log.splitlines() if line.startswith("::error::")][0]


@pytest.mark.parametrize("fault", sorted(WRONG))
def test_gitflic_a_wrong_stored_copy_is_named_removed_and_uploaded_again(publish, forge, dist, fault):
    forge.inject(Fault(fault, "POST", UPLOADS["gitflic"], times=1))

    run = publish(files="tool-linux-amd64.tar.gz")

    assert run.code == 0, run.log
    assert "stored tool-linux-amd64.tar.gz wrongly" in run.log and WRONG[fault] in run.log
    assert stored(forge) == {"tool-linux-amd64.tar.gz": [local_sha256(dist / "tool-linux-amd64.tar.gz")]}
    assert run.json["assets"][0]["sha256"] == local_sha256(dist / "tool-linux-amd64.tar.gz")


@pytest.mark.parametrize("forge_name", sorted(UPLOADS))
@pytest.mark.parametrize("fault", sorted(WRONG))
def test_a_copy_that_stays_wrong_fails_the_run_naming_the_check(publish, forge, dist, fault, forge_name):
    forge.inject(Fault(fault, "POST", UPLOADS[forge_name], times=10))

    run = publish(forge=forge_name, files="tool-linux-amd64.tar.gz", retry_attempts="2")

    assert run.code == 1
    error = _error(run.log)
    assert "tool-linux-amd64.tar.gz" in error and WRONG[fault] in error
    if forge_class(forge_name).can_delete_assets:
        assert stored(forge) == {}, "no wrong copy is left behind"
    else:  # SourceCraft cannot delete: the run says so, and the release is not published with it
        assert "web interface" in error and forge.releases(REPOSITORY)[0].draft is True


def test_a_size_mismatch_is_caught_even_with_verify_off(publish, forge, dist):
    forge.inject(Fault("wrong_size", "POST", UPLOADS["gitflic"], times=1))

    run = publish(files="tool-linux-amd64.tar.gz", verify="false")

    assert run.code == 0, run.log
    assert "bytes instead of" in run.log
    assert stored(forge) == {"tool-linux-amd64.tar.gz": [local_sha256(dist / "tool-linux-amd64.tar.gz")]}
