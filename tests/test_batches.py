"""GitFlic's upload takes several files in one request (its parts are all named ``files``), so a
release of many small files fits its 500 requests an hour. A server that keeps fewer of them than it
was sent, or refuses the request, costs requests, never a file or a second copy of one."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from conftest import REPOSITORY, local_sha256, stored
from test_races import _start_job

from release_action.sandbox.state import Fault
from release_action.uploads import BATCH_BYTES

UPLOAD = r"/release/[^/]+/file$"
#: Names a multipart part carries with care (multipart.md): quotes, a backslash-free comma and percent,
#: Cyrillic, an emoji, a semicolon, and a name that looks like a part's header.
ODD_NAMES = ['say "hi".txt', "a,b.txt", "100%.bin", "отчёт 1.pdf", "🙂.txt", "x; filename=y.txt", "EMPTY"]
DEB = b"!<arch>\ndebian-binary   1700000000  0     0     100644  4         `\n2.0\n"


def _folder(tmp_path: Path, count: int, size: int = 1024, names: list[str] | None = None) -> Path:
    folder = tmp_path / "many"
    folder.mkdir(exist_ok=True)
    for n in range(count):
        (folder / f"f{n:03}.bin").write_bytes(os.urandom(size))
    for name in names or []:
        (folder / name).write_bytes(b"" if name == "EMPTY" else os.urandom(size))
    return folder


def _uploads(forge) -> list[tuple[str, ...]]:
    """The parts of each upload request, in order; () for one whose body was never read."""
    return [
        tuple(exchange.sent_fields or ())
        for exchange in forge.exchanges()
        if exchange.method == "POST" and exchange.path.endswith("/file")
    ]


def _local(folder: Path) -> dict[str, list[str]]:
    return {path.name: [local_sha256(path)] for path in folder.iterdir()}


def _the_error(run) -> str:
    [error] = [line for line in run.log.splitlines() if line.startswith("::error::")]
    return error


def test_small_files_go_ten_to_a_request_and_a_large_one_alone(publish, forge, tmp_path):
    folder = _folder(tmp_path, 23, names=ODD_NAMES)
    (folder / "big.bin").write_bytes(os.urandom(BATCH_BYTES + 1))

    run = publish(working_directory=str(folder))

    assert run.code == 0, run.log
    assert stored(forge) == _local(folder)
    assert sorted(len(parts) for parts in _uploads(forge)) == [1, 10, 10, 10]
    assert set(run.statuses().values()) == {"uploaded"}
    [release] = forge.releases(REPOSITORY, "gitflic")
    ids = {copy.name: copy.id for copy in release.files}
    assert {asset["name"]: asset["id"] for asset in run.json["assets"]} == ids

    again = len(forge.calls())
    assert publish(working_directory=str(folder)).code == 0
    assert [method for method, _ in forge.calls()[again:]] == ["GET"], "a re-run with nothing to do only looks"


def test_a_server_that_keeps_only_the_first_file_loses_none_and_duplicates_none(publish, forge, tmp_path):
    forge.state.settings.gitflic_first_file_only = True
    folder = _folder(tmp_path, 25)

    run = publish(working_directory=str(folder))

    assert run.code == 0, run.log
    assert stored(forge) == _local(folder)
    assert re.search(r"stored 1 of the (10|5) files sent in one request; the rest of this run's files go one", run.log)
    # Every file took a request of its own after all: the batches saved nothing here.
    assert len(_uploads(forge)) == 25
    assert "alone" in run.log


def test_the_keep_first_setting_is_set_through_the_control_panel(forge):
    import requests

    answer = requests.post(f"{forge.url}/_sandbox/settings", json={"gitflic_first_file_only": True}, timeout=10)

    assert answer.json()["gitflic_first_file_only"] is True
    assert forge.state.settings.gitflic_first_file_only is True


def test_files_alike_in_one_batch_are_not_taken_for_each_other_renamed(publish, forge, tmp_path):
    """Kept only the first of a batch, the answer lists a copy with a missing file's bytes under another
    name: a file of this run, not the forge renaming the missing one (which would remove it, and fail)."""
    forge.state.settings.gitflic_first_file_only = True
    folder = tmp_path / "alike"
    folder.mkdir()
    for name in ("a-empty", "b-empty", "c.txt", "d.txt"):
        (folder / name).write_bytes(b"" if name.endswith("empty") else b"same bytes\n")

    run = publish(working_directory=str(folder))

    assert run.code == 0, run.log
    assert stored(forge) == _local(folder)


def test_a_name_the_forge_garbles_in_a_batch_is_named_and_its_copy_removed(publish, forge, tmp_path):
    folder = _folder(tmp_path, 4, names=["отчёт 1.pdf"])
    forge.inject(Fault("misread_name", "POST", UPLOAD))  # a Tomcat whose JVM does not read UTF-8

    run = publish(working_directory=str(folder))

    assert run.code == 1
    assert "отчёт 1.pdf under the name" in _the_error(run) and "the copy was removed" in _the_error(run)
    assert stored(forge) == {name: hashes for name, hashes in _local(folder).items() if name.startswith("f")}


@pytest.mark.parametrize("fault", ["lost_answer", "truncated", "garbage", "empty_answer", "reset_mid_body", "reset"])
def test_a_batch_whose_answer_is_lost_or_cut_sends_no_file_twice(publish, forge, tmp_path, fault):
    folder = _folder(tmp_path, 12, names=["EMPTY"])
    forge.inject(Fault(fault, "POST", UPLOAD))

    run = publish(working_directory=str(folder))

    assert run.code == 0, run.log
    assert stored(forge) == _local(folder)
    sent = [name for parts in _uploads(forge) for name in parts]
    if fault in ("reset", "reset_mid_body"):  # nothing of it was stored: all of it goes again
        assert "not sending it again" not in run.log
    else:
        assert len(sent) == 13, "a file of the batch whose answer was lost is not sent again"
        assert "not sending it again" in run.log


def test_an_answer_that_lists_only_some_of_the_batch_is_checked_against_the_release(publish, forge, tmp_path):
    folder = _folder(tmp_path, 12)
    forge.inject(Fault("stale_answer", "POST", UPLOAD, times=2))

    run = publish(working_directory=str(folder))

    assert run.code == 0, run.log
    assert stored(forge) == _local(folder)
    assert len(_uploads(forge)) == 2, "every file was stored, so none goes again, and batching goes on"
    assert "files go one per request" not in run.log


def test_a_batch_with_a_file_the_forge_refuses_names_that_file(publish, forge, tmp_path):
    forge.state.settings.gitflic_refuses_debs = True
    folder = _folder(tmp_path, 4)
    (folder / "tool_1.0_amd64.deb").write_bytes(DEB)

    run = publish(working_directory=str(folder), parallel="1")

    assert run.code == 1
    error = _the_error(run)
    assert "tool_1.0_amd64.deb" in error and "415" in error and "application/x-debian-package" in error
    assert "Traceback" not in run.log
    copies = stored(forge)
    assert "tool_1.0_amd64.deb" not in copies
    assert all(len(hashes) == 1 for hashes in copies.values()), "no file stored twice"


def test_a_server_that_refuses_batches_gets_files_one_by_one(publish, forge, tmp_path):
    folder = _folder(tmp_path, 25)
    forge.inject(Fault("status", "POST", UPLOAD, status=413, message="Maximum upload size exceeded"))

    run = publish(working_directory=str(folder), parallel="1")

    assert run.code == 0, run.log
    assert stored(forge) == _local(folder)
    assert "refused 10 files in one request" in run.log and "took each alone" in run.log
    refused, *alone = _uploads(forge)
    assert refused == () and alone == [("files",)] * 25, "refused before its body was read, then each alone"


@pytest.mark.parametrize("which", ["first", "last"])
def test_a_file_rewritten_during_its_batch_is_caught(publish, forge, tmp_path, which):
    folder = _folder(tmp_path, 10, size=600_000)
    target = folder / ("f000.bin" if which == "first" else "f009.bin")
    original = target.read_bytes()
    epoch = 1_700_000_000
    os.utime(target, (epoch, epoch))

    def rewrite() -> None:  # the same size, the mtime set back: only the inode's change time tells
        with target.open("r+b") as handle:
            handle.write(os.urandom(len(original)))
        os.utime(target, (epoch, epoch))

    forge.inject(Fault("pause_mid_body", "POST", UPLOAD, during=rewrite))

    run = publish(working_directory=str(folder))

    assert run.code == 1
    assert target.name in _the_error(run) and "changed while it was being published" in _the_error(run)
    # Cut off mid-body (nothing of the request stored), or stored whole and removed once the change was seen.
    assert target.name not in stored(forge)
    assert publish(working_directory=str(folder)).code == 0
    assert stored(forge) == _local(folder)


@pytest.mark.parametrize("forge_name, warned", [("gitflic", False), ("gitverse", True)])
def test_the_budget_warning_counts_requests_of_ten_files(publish, forge, tmp_path, forge_name, warned):
    """600 files: 60 uploads on GitFlic, within its 500 an hour; 600 on GitVerse, which takes one a request."""
    folder = _folder(tmp_path, 600, size=1)

    run = publish(working_directory=str(folder), forge=forge_name, dry_run="true")

    assert run.code == 0, run.log
    assert ("API requests, and" in run.log) is warned, run.log[-2000:]


@pytest.mark.slow
@pytest.mark.parametrize("first_file_only", [False, True])
def test_jobs_racing_with_batches_keep_one_copy_of_each_file(forge, tmp_path, first_file_only):
    """Three jobs at once, each with twelve files alike and six of its own: one copy of each name, and each
    job names the copy that stands."""
    forge.state.settings.latency = 0.3
    forge.state.settings.gitflic_first_file_only = first_file_only
    shared = {f"shared-{n:02}.bin": os.urandom(2000) for n in range(12)}
    folders = []
    for job in range(3):
        folder = tmp_path / f"job{job}"
        folder.mkdir()
        for name, content in {**shared, **{f"own-{job}-{n}.bin": os.urandom(2000) for n in range(6)}}.items():
            (folder / name).write_bytes(content)
        folders.append(folder)
    jobs = [_start_job(forge, folder, "gitflic", "v2.0.0") for folder in folders]
    logs = [job.communicate(timeout=180)[0] for job in jobs]

    assert [job.returncode for job in jobs] == [0, 0, 0], logs
    expected = {name: [copies[0]] for folder in folders for name, copies in _local(folder).items()}
    assert stored(forge, "v2.0.0") == expected
    [release] = [r for r in forge.releases(REPOSITORY) if r.tag == "v2.0.0"]
    ids = {copy.name: copy.id for copy in release.files}
    for folder in folders:
        assets = json.loads((tmp_path / f"{folder.name}.json").read_text())["assets"]
        assert {asset["name"]: asset["id"] for asset in assets} == {name: ids[name] for name in _local(folder)}


def _rebuilt(publish, forge, tmp_path: Path) -> Path:
    """Twelve files published, then each rebuilt with other bytes: a rerun replaces every one."""
    folder = _folder(tmp_path, 12)
    assert publish(working_directory=str(folder)).code == 0
    for path in folder.iterdir():
        path.write_bytes(os.urandom(1024))
    return folder


def test_a_server_that_removes_only_the_first_file_of_a_delete_leaves_no_second_copy(publish, forge, tmp_path):
    folder = _rebuilt(publish, forge, tmp_path)
    forge.state.settings.gitflic_deletes_first_only = True

    run = publish(working_directory=str(folder))

    assert run.code == 0, run.log
    assert stored(forge) == _local(folder)


@pytest.mark.parametrize("status", [404, 200])
def test_a_delete_answered_yes_that_removed_nothing_fails_naming_the_copies(publish, forge, tmp_path, status):
    folder = _rebuilt(publish, forge, tmp_path)
    # The answer of a server that removed nothing: 404, or a 200 as if it had.
    forge.inject(Fault("status", "DELETE", UPLOAD, times=1000, status=status))

    run = publish(working_directory=str(folder))

    assert run.code == 1, run.log
    [error] = [line for line in run.log.splitlines() if line.startswith("::error::")]
    assert "could not be removed" in error and "GitFlic answered yes to removing 12 of them, but still lists" in error
    assert all(path.name in error for path in folder.iterdir()), error
    assert "Traceback" not in run.log
