"""A CI matrix: several jobs publish different files to one new tag at the same moment."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import REPOSITORY, TOKEN, local_sha256, stored

JOBS = 8


@pytest.mark.slow
@pytest.mark.parametrize("forge_allows_duplicates", [False, True])
def test_parallel_jobs_end_with_one_release_and_every_file_once(forge, tmp_path, forge_allows_duplicates):
    forge.state.settings.allow_duplicate_tags = forge_allows_duplicates
    forge.state.settings.latency = 0.8  # every job lists before any has created the release
    jobs = []
    for n in range(JOBS):
        folder = tmp_path / f"job{n}"
        folder.mkdir()
        (folder / f"tool-{n}.tar.gz").write_bytes(os.urandom(50_000))
        env = {
            "PATH": os.environ.get("PATH", ""),
            "INPUT_API_URL": forge.api_url("gitflic"),
            "INPUT_TOKEN": TOKEN,
            "INPUT_REPOSITORY": REPOSITORY,
            "INPUT_TAG_NAME": "v2.0.0",
            "INPUT_FILES": "*.tar.gz",
            "INPUT_WORKING_DIRECTORY": str(folder),
            "INPUT_RETRY_WAIT_SECONDS": "0.1",
        }
        jobs.append((folder, subprocess.Popen([sys.executable, "-m", "release_action"], env=env,
                                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)))
    logs = [(folder, job.communicate(timeout=120)[0], job.returncode) for folder, job in jobs]

    for _, log, code in logs:
        assert code == 0, log
    creates = [call for call in forge.calls() if call == ("POST", f"/rest-api/project/{REPOSITORY}/release")]
    assert len(creates) >= 2, "the jobs did race to create the release"
    removed = [call for call in forge.calls() if call[0] == "DELETE" and "/file" not in call[1]]
    if forge_allows_duplicates:
        assert len(removed) == len(creates) - 1, "each job that lost the race removed its own release"
    else:
        assert removed == [], "a refused create leaves nothing to remove"
    assert stored(forge, "v2.0.0") == {
        f"tool-{n}.tar.gz": [local_sha256(folder / f"tool-{n}.tar.gz")] for n, (folder, _, _) in enumerate(logs)
    }
