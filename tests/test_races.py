"""A CI matrix: several jobs publish different files to one new tag at the same moment."""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import threading

import pytest
from conftest import REPOSITORY, STEPS, TOKEN, ci_context, local_sha256, stored

from release_action.forges import forge_class
from release_action.sandbox.server import Fault

JOBS = 8
#: A read of the release by its id: what a job does last, to meet other jobs' copies.
READ = {"gitflic": ("GET", r"/release/[^/]+$"), "gitea": ("GET", r"/releases/[0-9]+$"),
        "gitverse": ("GET", r"/releases/[0-9]+$")}


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


def _run_jobs(forge, tmp_path, forge_name: str, files: list[dict[str, bytes]]) -> list:
    """One job per file set, all started at once on tag v2.0.0; their folders, once every job succeeded."""
    folders = []
    for n, job_files in enumerate(files):
        folder = tmp_path / f"job{n}"
        folder.mkdir()
        for name, content in job_files.items():
            (folder / name).write_bytes(content)
        folders.append(folder)
    jobs = [_start_job(forge, folder, forge_name, "v2.0.0") for folder in folders]
    for job in jobs:
        log = job.communicate(timeout=120)[0]
        assert job.returncode == 0, log
    return folders


def _start_job(forge, folder, forge_name: str, tag: str):
    env = {
        "PATH": os.environ.get("PATH", ""),
        "INPUT_FORGE": forge_name,
        "INPUT_API_URL": forge.api_url(forge_name),
        "INPUT_TOKEN": TOKEN,
        "INPUT_REPOSITORY": REPOSITORY,
        "INPUT_TAG_NAME": tag,
        "INPUT_FILES": "*",
        "INPUT_WORKING_DIRECTORY": str(folder),
        "INPUT_JSON_FILE": str(folder.parent / f"{folder.name}.json"),
        "INPUT_RETRY_WAIT_SECONDS": "0.1",
        **ci_context(forge_name, tag),
    }
    return subprocess.Popen([sys.executable, "-m", "release_action"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
@pytest.mark.parametrize("forge_name", [name for name in STEPS if forge_class(name).creates_drafts])
def test_parallel_jobs_on_a_forge_with_drafts_all_succeed_and_the_release_is_published_once(forge, tmp_path,
                                                                                          forge_name):
    forge.state.settings.latency = 0.5
    folders = _run_jobs(forge, tmp_path, forge_name, [{f"tool-{n}.tar.gz": os.urandom(50_000)} for n in range(4)])

    method, path = STEPS[forge_name]["publish"]
    publishes = [call for call in forge.calls() if call[0] == method and re.search(path, call[1])]
    assert len(publishes) >= 2, "more than one job tried to publish"
    [release] = forge.releases(REPOSITORY)
    assert release.draft is False
    assert stored(forge, "v2.0.0") == {
        f"tool-{n}.tar.gz": [local_sha256(folder / f"tool-{n}.tar.gz")] for n, folder in enumerate(folders)}


@pytest.mark.slow
@pytest.mark.parametrize("forge_name", [name for name in STEPS if forge_class(name).can_delete_assets])
def test_jobs_uploading_the_same_file_at_once_keep_one_copy_and_all_name_it(forge, tmp_path, forge_name):
    forge.state.settings.latency = 0.5
    content = os.urandom(200_000)
    folders = _run_jobs(forge, tmp_path, forge_name, [{"tool.tar.gz": content}] * 3)

    uploads = [call for call in forge.calls() if call[0] == "POST" and re.search(STEPS[forge_name]["upload"][1], call[1])]
    assert len(uploads) >= 2, "the jobs did race to upload"
    [release] = [r for r in forge.releases(REPOSITORY) if r.tag == "v2.0.0"]
    [kept] = release.files
    assert kept.digests["sha256"] == local_sha256(folders[0] / "tool.tar.gz")
    for folder in folders:
        [asset] = json.loads((tmp_path / f"{folder.name}.json").read_text())["assets"]
        assert asset["id"] == forge.asset_id(forge_name, kept)


@pytest.mark.slow
@pytest.mark.parametrize("forge_name", [name for name in STEPS if forge_class(name).can_delete_assets])
def test_jobs_publishing_other_bytes_under_one_name_leave_a_copy_and_say_so(forge, tmp_path, forge_name):
    """A matrix whose jobs each write their own SHA256SUMS, a configuration mistake: a copy is left, each job
    that exits 0 names a copy with its bytes, and where copies with different bytes are left side by side
    a job failed, saying in one sentence that another job published other content."""
    forge.state.settings.latency = 0.3
    folders = _job_folders(tmp_path, "SHA256SUMS", {f"job{n}": os.urandom(500) for n in range(3)})
    jobs = [_start_job(forge, folder, forge_name, "v2.0.0") for folder in folders.values()]
    logs = [(job.communicate(timeout=120)[0], job.returncode) for job in jobs]

    left = {copy.digests["sha256"] for copy in _release(forge).files}
    assert left, logs
    for folder, (log, code) in zip(folders.values(), logs):
        if code == 0:
            [asset] = json.loads((tmp_path / f"{folder.name}.json").read_text())["assets"]
            assert asset["sha256"] == local_sha256(folder / "SHA256SUMS"), log
        else:
            errors = [line for line in log.splitlines() if line.startswith("Error: ")]
            assert code == 1 and len(errors) == 1 and "Traceback" not in log, log
            assert "with other content" in errors[0], log
    assert len(left) == 1 or any(code for _, code in logs), logs


@pytest.mark.slow
@pytest.mark.parametrize("forge_name", [name for name in STEPS if forge_class(name).can_delete_assets])
def test_a_job_that_plans_after_another_uploaded_replaces_its_copy_and_neither_removes_the_last(forge, tmp_path,
                                                                                                forge_name):
    """Two jobs of a matrix each build SHA256SUMS anew, over a release that holds an older one. Job A
    uploads; job B starts only then, so A's copy looks older to it, as it would to a later run. A reads
    the release while B's copy is there and B has not yet removed the copies it replaces. Once they
    left another job's copy no copy at all was left; now B's stands, and each job that exits 0 held it."""
    folders = _job_folders(tmp_path, "SHA256SUMS", {"old": b"an older build\n", "A": os.urandom(300),
                                                    "B": os.urandom(300)})
    old = _start_job(forge, folders.pop("old"), forge_name, "v2.0.0")
    assert old.wait(timeout=120) == 0, old.communicate()[0]
    logs = _first_reads_while_second_removes(forge, forge_name, folders)

    [kept] = _release(forge).files
    assert logs["B"][1] == 0, logs["B"][0]
    assert kept.digests["sha256"] == local_sha256(folders["B"] / "SHA256SUMS"), logs
    [asset] = json.loads((tmp_path / "B.json").read_text())["assets"]
    assert asset["id"] == forge.asset_id(forge_name, kept)
    log_a, code_a = logs["A"]
    assert code_a == 0 or (code_a == 1 and "with other content" in log_a and "Traceback" not in log_a), log_a


def _job_folders(tmp_path, name: str, builds: dict[str, bytes]) -> dict:
    """A folder per job, each holding its own build of ``name``."""
    folders = {}
    for job, content in builds.items():
        folders[job] = tmp_path / job
        folders[job].mkdir()
        (folders[job] / name).write_bytes(content)
    return folders


def _first_reads_while_second_removes(forge, forge_name: str, folders: dict) -> dict[str, tuple[str, int]]:
    """Two jobs on tag v2.0.0, from ``folders`` in order: the first uploads, and its read of the release
    after that waits until the second, started then, removes a copy; that removal waits until the first
    has finished. Each job's log and exit code."""
    (first, first_folder), (second, second_folder) = folders.items()
    reading, removing = threading.Event(), threading.Event()
    jobs = {}

    def hold_the_read():
        reading.set()
        removing.wait(timeout=30)

    def hold_the_removal():
        removing.set()
        jobs[first].wait(timeout=60)

    forge.inject(Fault("hold", "POST", STEPS[forge_name]["upload"][1],
                       during=lambda: forge.inject(Fault("hold", *READ[forge_name], during=hold_the_read))))
    jobs[first] = _start_job(forge, first_folder, forge_name, "v2.0.0")
    assert reading.wait(timeout=60), f"job {first} read the release after its upload"
    forge.inject(Fault("hold", "DELETE", STEPS[forge_name]["delete"][1], during=hold_the_removal))
    jobs[second] = _start_job(forge, second_folder, forge_name, "v2.0.0")
    logs = {job: (process.communicate(timeout=120)[0], process.returncode) for job, process in jobs.items()}
    assert removing.is_set(), logs
    return logs


def _release(forge):
    [release] = [r for r in forge.releases(REPOSITORY) if r.tag == "v2.0.0"]
    return release


@pytest.mark.slow
@pytest.mark.parametrize("forge_name", [name for name in STEPS if forge_class(name).can_delete_assets
                                        and forge_class(name).hashes_by_download])
def test_a_copy_removed_between_the_read_and_its_download_does_not_count(forge, tmp_path, forge_name):
    """Jobs with identical files remove each other's later copies, so a job may list a copy and find it
    gone when it downloads it to hash it. Once that failed the job (HTTP 404) and left its own copy."""
    content = os.urandom(5000)
    folders = _job_folders(tmp_path, "tool.tar.gz", {"A": content, "B": content})
    done = {}

    def remove_b_copy():  # another job removes B's copy (say, as a duplicate) once A has listed it
        with forge.state.lock:
            release = _release(forge)
            release.files = [stored for stored in release.files if stored.id != done["B copy"]]

    def b_publishes_first():  # A has planned; B plans, uploads and ends before A's upload is stored
        b = _start_job(forge, folders["B"], forge_name, "v2.0.0")
        done["B"] = b.communicate(timeout=60)
        [done["B copy"]] = [stored.id for stored in _release(forge).files]
        forge.inject(Fault("hold_answer", *READ[forge_name], during=remove_b_copy))

    forge.inject(Fault("hold", "POST", STEPS[forge_name]["upload"][1], during=b_publishes_first))
    a = _start_job(forge, folders["A"], forge_name, "v2.0.0")
    log = a.communicate(timeout=120)[0]

    assert "B copy" in done, done
    assert a.returncode == 0, log
    [kept] = _release(forge).files
    assert kept.digests["sha256"] == local_sha256(folders["A"] / "tool.tar.gz")
    [asset] = json.loads((tmp_path / "A.json").read_text())["assets"]
    assert asset["id"] == forge.asset_id(forge_name, kept)


@pytest.mark.slow
@pytest.mark.parametrize("forge_name", [name for name in STEPS if forge_class(name).can_delete_assets])
def test_a_job_whose_file_matches_the_older_copy_does_not_keep_it_while_another_job_replaces_it(
        forge, tmp_path, forge_name):
    """Job B replaces an older copy and stands on its own; its removal of the older copy waits. Job A,
    whose file is byte for byte that older copy, plans meanwhile and sees both. Once A kept the older
    copy and removed B's at once, and B then removed the older one: both exited 0 and no copy was
    left. Now A uploads and settles like any racing job, and a copy with the bytes of a job that
    exited 0 stands."""
    built = {"old": b"build X\n" * 100, "B": b"build Y\n" * 100, "A": b"build X\n" * 100}
    folders = _job_folders(tmp_path, "tool.tar.gz", built)
    old = _start_job(forge, folders["old"], forge_name, "v2.0.0")
    assert old.wait(timeout=120) == 0, old.communicate()[0]
    b_removes, a_done = threading.Event(), threading.Event()

    def hold_b_removal():
        b_removes.set()
        a_done.wait(timeout=60)

    forge.inject(Fault("hold", "DELETE", STEPS[forge_name]["delete"][1], during=hold_b_removal))
    b = _start_job(forge, folders["B"], forge_name, "v2.0.0")
    assert b_removes.wait(timeout=60), "job B removes the older copy"
    a = _start_job(forge, folders["A"], forge_name, "v2.0.0")
    logs = {"A": (a.communicate(timeout=120)[0], a.returncode)}
    a_done.set()
    logs["B"] = (b.communicate(timeout=120)[0], b.returncode)

    copies = _release(forge).files
    assert len(copies) == 1, (copies, logs)
    succeeded = {hashlib.sha256(built[job]).hexdigest() for job, (_, code) in logs.items() if code == 0}
    assert copies[0].digests["sha256"] in succeeded, logs
    for log, code in logs.values():
        errors = [line for line in log.splitlines() if line.startswith("Error: ")]
        assert code == 0 or (code == 1 and len(errors) == 1 and "Traceback" not in log), log


@pytest.mark.slow
@pytest.mark.parametrize("forge_name", [name for name in STEPS if forge_class(name).can_delete_assets])
def test_a_job_with_the_same_file_that_starts_after_another_uploaded_keeps_that_copy(forge, tmp_path, forge_name):
    """A matrix builds one file anew over a release that holds an older build. Job A uploads and reads
    the release; job T, with the same bytes, starts only then and sees the older copy beside A's. Once
    T uploaded its own and each job removed the other's copy (A's as older, T's as a duplicate): no copy
    was left. Now T keeps A's copy, which is the newest, and both jobs name it."""
    built = {"old": b"older build\n" * 50, "A": b"new build\n" * 50, "T": b"new build\n" * 50}
    folders = _job_folders(tmp_path, "tool.tar.gz", built)
    old = _start_job(forge, folders["old"], forge_name, "v2.0.0")
    assert old.wait(timeout=120) == 0, old.communicate()[0]
    logs = _first_reads_while_second_removes(forge, forge_name, {"A": folders["A"], "T": folders["T"]})

    [kept] = _release(forge).files
    assert kept.digests["sha256"] == local_sha256(folders["A"] / "tool.tar.gz"), logs
    for job, (log, code) in logs.items():
        assert code == 0, log
        [asset] = json.loads((tmp_path / f"{job}.json").read_text())["assets"]
        assert asset["id"] == forge.asset_id(forge_name, kept), log
