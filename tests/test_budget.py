"""GitFlic allows 500 API calls an hour: a run spends one call per ten files (one a file on the
other forges) plus a small constant, and a re-run with nothing to do only looks. Counted by the
forge, not by the program.

SourceCraft reports no hashes, so telling an identical file from a same-sized changed one
(on a re-run, whatever ``verify`` says) takes each stored file's download link."""

from __future__ import annotations

import os

import pytest
from conftest import local_sha256, stored

FILES = 3  # the dist fixture


def _api_calls(forge, since: int = 0) -> list[tuple[str, str]]:
    return forge.calls()[since:]


@pytest.mark.parametrize(
    "forge_name, verify, clean, rerun",
    [
        # list, create, list again, the three files in one upload, the release read once more to meet
        # other jobs' copies
        ("gitflic", "true", 1 + 4, 1),
        ("sourcecraft", "false", FILES + 3, 1 + FILES),  # find, create, uploads, publish
        ("sourcecraft", "true", 2 * FILES + 3, 1 + FILES),  # + each stored file's download link
        # find, tag, create, uploads, the release read again to meet other jobs' copies, publish; the
        # files are checked by downloads from the web side, outside the API
        ("gitea", "true", FILES + 5, 1),
        ("gitverse", "true", FILES + 5, 1),  # the tag's lookup replaced by the list, for a draft
    ],
)
def test_calls_per_run(publish, forge, forge_name, verify, clean, rerun):
    assert publish(forge=forge_name, verify=verify).code == 0
    first = len(_api_calls(forge))

    assert publish(forge=forge_name, verify=verify).code == 0
    again = _api_calls(forge, first)

    assert first == clean
    assert len(again) == rerun
    assert all(method == "GET" for method, _ in again), "a re-run with nothing to do only looks"


def test_the_program_reports_the_same_count_as_the_forge(publish, forge):
    run = publish()
    assert f"({len(forge.calls())} API calls)" in run.log


def test_a_rerun_replacing_every_file_on_gitflic_removes_the_old_copies_in_one_request(publish, forge, dist):
    for n in range(25):
        (dist / f"f{n:02}.bin").write_bytes(os.urandom(100))
    assert publish().code == 0
    for path in dist.iterdir():
        path.write_bytes(os.urandom(100))
    since = len(forge.calls())

    run = publish()

    assert run.code == 0, run.log
    again = _api_calls(forge, since)
    # find the release, the files in batches of ten, the release read to meet other jobs' copies, and one
    # request that removes every older copy: GitFlic's delete takes a list, and answers with the release,
    # which shows them gone
    assert [method for method, _ in again].count("DELETE") == 1, again
    assert len(again) == 1 + 3 + 1 + 1, again
    assert stored(forge) == {path.name: [local_sha256(path)] for path in dist.iterdir()}
