"""Every fault against every step, on every forge: success with exactly one correct copy of each
file, or a non-zero exit with one clear sentence and nothing half-made left by the run."""

from __future__ import annotations

import dataclasses
import time

import pytest
from conftest import REPOSITORY, STEPS, local_sha256, stored

from release_action.sandbox.state import Fault

FAULTS = {
    "429": Fault("status", status=429, times=2),
    "429-retry-after": Fault("status", status=429, retry_after="1"),
    "500-burst": Fault("status", status=500, times=3),
    "502-burst": Fault("status", status=502, times=3),
    "503-burst": Fault("status", status=503, times=3),
    "504-burst": Fault("status", status=504, times=3),
    "reset-before-body": Fault("reset", times=2),
    "reset-mid-body": Fault("reset_mid_body", times=2),
    "lost-answer": Fault("lost_answer"),
    "slower-than-timeout": Fault("slow", seconds=1.5),
    "truncated-answer": Fault("truncated"),
    "non-json-answer": Fault("garbage"),
}

CASES = [(forge, step, fault) for forge, steps in STEPS.items() for step in steps for fault in FAULTS]
CASES += [(forge, "upload", "corrupted-storage") for forge in STEPS]


@pytest.mark.parametrize("forge_name, step, fault_name", CASES, ids=["-".join(case) for case in CASES])
def test_fault_at_step(publish, forge, dist, forge_name, step, fault_name):
    inputs = {"forge": forge_name, "timeout_seconds": "1", "retry_attempts": "6", "retry_wait_seconds": "0.05"}
    if step in ("update", "delete"):
        assert publish(**inputs, name="before").code == 0  # a release to update, files to replace
        (dist / "checksums.txt").write_text("changed\n") if step == "delete" else None
        inputs["name"] = "after"
    method, path = STEPS[forge_name][step]
    fault = dataclasses.replace(FAULTS.get(fault_name, Fault("corrupt")), method=method, path=path)
    forge.inject(fault)

    run = publish(**inputs)

    assert fault.times == 0, "the fault struck"
    [release] = [r for r in forge.releases(REPOSITORY) if r.tag == "v1.0.0"]
    if (forge_name, fault_name) == ("sourcecraft", "corrupted-storage"):
        # No API can delete the bad copy: stop, say so, and keep the release a draft.
        assert run.code == 1
        [error] = [line for line in run.log.splitlines() if line.startswith("::error::")]
        assert "stored tool-" in error or "stored checksums.txt" in error
        assert "web interface" in error
        assert release.draft is True
        return
    assert run.code == 0, run.log
    assert stored(forge) == {p.name: [local_sha256(p)] for p in dist.iterdir()}
    assert release.title == inputs.get("name", "v1.0.0")
    assert release.draft is False
    if fault_name == "slower-than-timeout":
        time.sleep(1.5)  # a slow answer's work is done before it answers; nothing more may arrive
        assert stored(forge) == {p.name: [local_sha256(p)] for p in dist.iterdir()}
