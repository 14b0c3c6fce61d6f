"""Parallel uploads: several files at once, outputs in the order of the patterns, and a failure
that stops the rest without leaving anything half-made. Measured by the forge, not by a clock."""

from __future__ import annotations

import os

import pytest
from conftest import local_sha256, stored

from release_action.sandbox.state import Fault
from release_action.uploads import BATCH_BYTES


@pytest.fixture
def many(dist):
    # Each more than half a batch's bytes, so no two share a request: one file a request, as on every forge.
    for n in range(8):
        (dist / f"part-{n}.bin").write_bytes(os.urandom(BATCH_BYTES // 2 + 1))
    return dist


@pytest.mark.parametrize("parallel, most", [("1", 1), ("4", 4)])
def test_uploads_run_as_many_at_once_as_asked_and_outputs_keep_the_order(publish, forge, many, parallel, most):
    forge.state.settings.latency = 0.2  # long enough for uploads to overlap when they may

    run = publish(files="part-*.bin\nchecksums.txt", parallel=parallel)

    assert run.code == 0, run.log
    assert forge.state.max_in_flight == most
    assert [a["name"] for a in run.json["assets"]] == [f"part-{n}.bin" for n in range(8)] + ["checksums.txt"]
    assert stored(forge) == {p.name: [local_sha256(p)] for p in many.iterdir() if p.name.startswith(("part", "check"))}


def test_a_failure_stops_the_other_uploads_and_leaves_no_bad_copy(publish, forge, many):
    forge.inject(Fault("corrupt", "POST", r"/file$", times=1000))

    run = publish(files="part-*.bin", parallel="4", retry_attempts="2")

    assert run.code == 1
    assert run.log.count("::error::") == 1
    assert stored(forge) == {}
    uploads = [c for c in forge.calls() if c[0] == "POST" and c[1].endswith("/file")]
    assert len(uploads) < 16, "the files not yet started were not sent once the run had failed"
