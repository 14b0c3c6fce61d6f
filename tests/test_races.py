"""A CI matrix: several jobs publish to one tag at the same moment.

Where jobs publish one name at once, the orderings of their requests that matter are replayed as
real processes: each job has its own token, and its reads, uploads and removals wait at the
sandbox until the schedule names them (``Choreography``). The same schedule played in the model
(``racing_model.replay``, the checker's own) says what the jobs must end with, and the two must
agree. Each ordering that once left a name without a copy or a job's sentence untrue is a named
schedule below; a sample of the model's schedules is drawn with fixed seeds.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import subprocess
import sys
import threading
import time

import pytest
import racing_model
from conftest import REPOSITORY, STEPS, TOKEN, ci_context, local_sha256, stored
from racing_model import Scenario, Schedule

from release_action.forges import forge_class
from release_action.sandbox.state import Fault

JOBS = 8
#: A read of the release by its id: what a job does last, to meet other jobs' copies.
READ = {
    "gitflic": ("GET", r"/release/[^/]+$"),
    "gitea": ("GET", r"/releases/[0-9]+$"),
    "gitverse": ("GET", r"/releases/[0-9]+$"),
}


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
        jobs.append(
            (
                folder,
                subprocess.Popen(
                    [sys.executable, "-m", "release_action"],
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                ),
            )
        )
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


def _start_job(forge, folder, forge_name: str, tag: str, token: str = TOKEN):
    env = {
        "PATH": os.environ.get("PATH", ""),
        "INPUT_FORGE": forge_name,
        "INPUT_API_URL": forge.api_url(forge_name),
        "INPUT_TOKEN": token,
        "INPUT_REPOSITORY": REPOSITORY,
        "INPUT_TAG_NAME": tag,
        "INPUT_FILES": "*",
        "INPUT_WORKING_DIRECTORY": str(folder),
        "INPUT_JSON_FILE": str(folder.parent / f"{folder.name}.json"),
        "INPUT_RETRY_WAIT_SECONDS": "0.1",
        # A request held until its turn is not a request the forge failed to answer.
        "INPUT_TIMEOUT_SECONDS": "60",
        **ci_context(forge_name, tag),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "release_action"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


@pytest.mark.slow
@pytest.mark.parametrize("forge_name", [name for name in STEPS if forge_class(name).creates_drafts])
def test_parallel_jobs_on_a_forge_with_drafts_all_succeed_and_the_release_is_published_once(
    forge, tmp_path, forge_name
):
    forge.state.settings.latency = 0.5
    folders = _run_jobs(forge, tmp_path, forge_name, [{f"tool-{n}.tar.gz": os.urandom(50_000)} for n in range(4)])

    method, path = STEPS[forge_name]["publish"]
    publishes = [call for call in forge.calls() if call[0] == method and re.search(path, call[1])]
    assert len(publishes) >= 2, "more than one job tried to publish"
    [release] = forge.releases(REPOSITORY)
    assert release.draft is False
    assert stored(forge, "v2.0.0") == {
        f"tool-{n}.tar.gz": [local_sha256(folder / f"tool-{n}.tar.gz")] for n, folder in enumerate(folders)
    }


@pytest.mark.slow
@pytest.mark.parametrize("forge_name", [name for name in STEPS if forge_class(name).can_delete_assets])
def test_jobs_uploading_the_same_file_at_once_keep_one_copy_and_all_name_it(forge, tmp_path, forge_name):
    forge.state.settings.latency = 0.5
    content = os.urandom(200_000)
    folders = _run_jobs(forge, tmp_path, forge_name, [{"tool.tar.gz": content}] * 3)

    uploads = [
        call for call in forge.calls() if call[0] == "POST" and re.search(STEPS[forge_name]["upload"][1], call[1])
    ]
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
    for folder, (log, code) in zip(folders.values(), logs, strict=True):
        if code == 0:
            [asset] = json.loads((tmp_path / f"{folder.name}.json").read_text())["assets"]
            assert asset["sha256"] == local_sha256(folder / "SHA256SUMS"), log
        else:
            errors = [line for line in log.splitlines() if line.startswith("Error: ")]
            assert code == 1 and len(errors) == 1 and "Traceback" not in log, log
            assert "with other content" in errors[0], log
    assert len(left) == 1 or any(code for _, code in logs), logs


def _job_folders(tmp_path, name: str, builds: dict[str, bytes]) -> dict:
    """A folder per job, each holding its own build of ``name``."""
    folders = {}
    for job, content in builds.items():
        folders[job] = tmp_path / job
        folders[job].mkdir()
        (folders[job] / name).write_bytes(content)
    return folders


def _release(forge):
    [release] = [r for r in forge.releases(REPOSITORY) if r.tag == "v2.0.0"]
    return release


@pytest.mark.slow
@pytest.mark.parametrize(
    "forge_name",
    [name for name in STEPS if forge_class(name).can_delete_assets and forge_class(name).hashes_by_download],
)
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


# -- orderings of jobs publishing one name, replayed as the model plays them ---------------------

#: The requests the choreography orders, per forge: a read of the release (to start, or start over,
#: or settle), an upload, a removal. GitFlic removes a job's copies in one request.
HELD = {
    "gitflic": {
        "read": [("GET", r"/release$"), ("GET", r"/release/[^/]+$")],
        "upload": [("POST", r"/file$")],
        "remove": [("DELETE", r"/file$")],
    },
    "gitea": {
        "read": [("GET", r"/releases/tags/[^/]+$"), ("GET", r"/releases/[0-9]+$")],
        "upload": [("POST", r"/assets$")],
        "remove": [("DELETE", r"/assets/[0-9]+$")],
    },
}
#: What strikes an upload the schedule loses.
LOST = {"upload, answer lost": "lost_answer", "upload, lost before it lands": "reset"}
#: Seconds a job's request, or the next step, may take to come: far more than any needs.
WAIT = 30


class Choreography:
    """Real jobs whose reads, uploads and removals wait at the sandbox (a "hold" fault per job, matched by
    its own token) until the schedule names them. A step is over once its job is back at the gate or has
    ended, so the downloads that check the copies a read listed belong to that read, as in the model."""

    def __init__(self, forge, forge_name: str, schedule: Schedule):
        self.turns = _turns(schedule.steps, batched=forge_name == "gitflic")
        self.now = -1  # the turn whose request may be served
        self.taken = -1  # the last turn a request took
        self.waiting: dict[str, str] = {}  # job -> the kind of request it holds at the gate
        self.problems: list[str] = []
        self.changed = threading.Condition()
        for letter in sorted({letter for letter, _, _ in self.turns}):
            forge.add_project(REPOSITORY, [], _token(letter))
            forge.inject(
                *(
                    Fault(
                        "hold",
                        method,
                        path,
                        times=1000,
                        token=_token(letter),
                        during=lambda letter=letter, kind=kind: self._gate(letter, kind),
                    )
                    for kind, requests in HELD[forge_name].items()
                    for method, path in requests
                )
            )

    def _gate(self, letter: str, kind: str) -> str | None:
        """In the sandbox, while it holds the request: wait for the turn, and say whether the upload is lost."""
        with self.changed:
            self.waiting[letter] = kind
            self.changed.notify_all()
            mine = self.changed.wait_for(
                lambda: self.now > self.taken and self.turns[self.now][0] == letter, timeout=WAIT
            )
            del self.waiting[letter]
            if not mine:
                self.problems.append(f"{letter} made a {kind} request the schedule has no turn for")
                return None
            self.taken = self.now
            self.changed.notify_all()
            return LOST.get(self.turns[self.now][1])

    def play(self, jobs: dict[str, subprocess.Popen]) -> None:
        """Serve the turns one by one, each once its job holds the request it names at the gate."""
        for n, (letter, request, _) in enumerate(self.turns):
            with self.changed:
                if not self.changed.wait_for(lambda letter=letter: letter in self.waiting, timeout=WAIT):
                    self.problems.append(f"turn {n + 1}: {letter} never came to make its {request} request")
                    return
                if self.waiting[letter] != request.split(",")[0]:
                    self.problems.append(f"turn {n + 1}: {letter} made a {self.waiting[letter]} request, not {request}")
                    return
                self.now = n
                self.changed.notify_all()
            deadline = time.monotonic() + WAIT
            while not self._over(n, letter, jobs[letter]):  # the job's next request, or its end
                assert time.monotonic() < deadline, f"turn {n + 1} ({letter}: {request}) did not end"
                time.sleep(0.02)

    def _over(self, n: int, letter: str, job: subprocess.Popen) -> bool:
        with self.changed:
            return self.taken == n and (letter in self.waiting or job.poll() is not None)


def _turns(steps, *, batched: bool) -> list[tuple[str, str, int]]:
    """The schedule's steps as requests: (job, request, steps it takes); with ``batched``, a job's
    removals in a row are one request."""
    turns = []
    for letter, request in steps:
        if batched and request == "remove" and turns and turns[-1][:2] == (letter, "remove"):
            turns[-1] = (letter, request, turns[-1][2] + 1)
        else:
            turns.append((letter, request, 1))
    return turns


def _token(letter: str) -> str:
    return f"{TOKEN}-job-{letter.lower()}"


#: Bytes per build letter: "O" is an older build, stored before the jobs start.
BUILDS = {letter: f"build {letter}\n".encode() * 200 for letter in "OXYZ"}


def _play(forge, tmp_path, forge_name: str, schedule: Schedule) -> tuple[racing_model.Ending, dict[str, str]]:
    """The schedule played by real jobs: what they ended with, as the model's Ending, and their logs."""
    scenario = schedule.scenario
    first = tmp_path / "before"
    first.mkdir()
    # The release is there before the jobs start, holding the older copy or none.
    (first / ("tool.bin" if scenario.older else "README.txt")).write_bytes(BUILDS[scenario.older or "O"])
    made = _start_job(forge, first, forge_name, "v2.0.0")
    assert made.wait(timeout=120) == 0, made.communicate()[0]
    letters = [racing_model.name(n) for n in range(len(scenario.builds))]
    folders = _job_folders(
        tmp_path, "tool.bin", {letter: BUILDS[build] for letter, build in zip(letters, scenario.builds, strict=True)}
    )
    choreography = Choreography(forge, forge_name, schedule)
    jobs = {letter: _start_job(forge, folders[letter], forge_name, "v2.0.0", _token(letter)) for letter in letters}
    try:
        choreography.play(jobs)
    finally:
        logs = {letter: job.communicate(timeout=120)[0] for letter, job in jobs.items()}
    assert not choreography.problems, (choreography.problems, logs)
    return _ending(forge, forge_name, tmp_path, {letter: jobs[letter].returncode for letter in letters}), logs


def _ending(forge, forge_name: str, tmp_path, codes: dict[str, int]) -> racing_model.Ending:
    build_of = {hashlib.sha256(content).hexdigest(): letter for letter, content in BUILDS.items()}
    left = [copy for copy in _release(forge).files if copy.name == "tool.bin"]
    ids = [forge.asset_id(forge_name, copy) for copy in left]
    ended = []
    for letter, code in codes.items():
        if code:
            ended.append((code, None, None))
            continue
        [named] = json.loads((tmp_path / f"{letter}.json").read_text())["assets"]
        ended.append((code, build_of[named["sha256"]], ids.index(named["id"]) if named["id"] in ids else None))
    return racing_model.Ending(tuple(ended), tuple(build_of[copy.digests["sha256"]] for copy in left))


def _steps(text: str) -> tuple[tuple[str, str], ...]:
    """``"A read; B upload, answer lost"`` as schedule steps."""
    return tuple(tuple(step.strip().split(" ", 1)) for step in text.split(";"))


#: Orderings that once broke a promise, and the checker's counterexamples: each as the model plays it.
ORDERINGS = {
    # The issue's: A and C build tool.bin alike, B not; C starts after A's and B's copies are stored and
    # uploads its own; A and C read all three, then the removals run. None was left, and B said its copy was
    # kept. Now C replaces both as a later run would, and A and B, which saw each other's bytes, say so.
    "a_job_that_starts_after_two_others_uploaded_replaces_both_and_they_say_so": Schedule(
        Scenario("XYX"),
        _steps("A read; B read; A upload; B upload; C read; C upload; A read; C read; C remove; C remove; B read"),
    ),
    # A uploads over an older build; B starts only then and replaces A's copy; A reads while B's copy is
    # there and B has not removed anything. Once they left another job's copy, none was left.
    "a_job_that_starts_after_another_uploaded_replaces_its_copy": Schedule(
        Scenario("XY", older="O"), _steps("A read; A upload; B read; B upload; A read; A remove; B read; B remove")
    ),
    # B replaces an older copy whose bytes are A's; A starts while B's removal waits and sees both. Once A
    # kept the older copy and removed B's, and B removed the older one: none was left.
    "a_job_whose_file_matches_the_older_copy_does_not_keep_it_while_another_replaces_it": Schedule(
        Scenario("XY", older="X"),
        _steps("B read; B upload; B read; A read; A upload; A read; A remove; A remove; B remove"),
    ),
    # A uploads over an older build and reads; B, with the same bytes, starts only then. Once B uploaded
    # its own and each removed the other's copy: none was left. Now B keeps A's copy, and both name it.
    "a_job_with_the_same_file_that_starts_after_another_uploaded_keeps_that_copy": Schedule(
        Scenario("XX", older="O"), _steps("A read; A upload; B read; A read; A remove; B remove")
    ),
    # Three jobs with the same file at once: the first copy stands, the others go, and all name it.
    "jobs_with_the_same_file_at_once_keep_the_first_copy": Schedule(
        Scenario("XXX"),
        _steps("A read; B read; C read; A upload; B upload; C upload; A read; B read; B remove; C read; C remove"),
    ),
    # Three builds of one name at once (each job's own SHA256SUMS): every copy stays, every job says so.
    "jobs_with_other_bytes_at_once_each_say_so": Schedule(
        Scenario("XYZ"), _steps("A read; B read; C read; A upload; B upload; C upload; A read; B read; C read")
    ),
    # The soak's: answers to uploads lost, so a job finds what landed only by reading the release. A job
    # whose copy did not stand left one beside the copy that stood. Now it starts over as a later job would.
    "jobs_with_other_bytes_whose_upload_answers_are_lost_start_over": Schedule(
        Scenario("XYZ", lost=2),
        _steps(
            "A read; B read; C read; A upload, answer lost; B upload, answer lost; C upload; A read; A upload;"
            " B read; B upload; C read; A read; A remove; A remove; A remove; B read; B remove"
        ),
    ),
    # The checker's counterexample to the stronger promise that a named copy always stays: C, with other
    # bytes, starts after A finished and replaces its copy, as a later run would.
    "a_later_job_with_other_bytes_replaces_the_copy_a_finished_job_named": Schedule(
        Scenario("XXY"), _steps("A read; A upload; A read; B read; C read; C upload; C read; C remove")
    ),
    # Counterexamples to taking a copy for one's own after a lost answer: A's answer is lost while B stores
    # the same bytes; A starts over and keeps the first copy, and B, whose copy went, names that one.
    "a_job_whose_answer_is_lost_beside_another_s_identical_copy_starts_over_and_keeps_the_first": Schedule(
        Scenario("XXX"), _steps("A read; B read; A upload, answer lost; B upload; A read; A remove; C read; B read")
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("forge_name", sorted(HELD))
@pytest.mark.parametrize("ordering", sorted(ORDERINGS))
def test_an_ordering_that_once_broke_ends_as_the_model_says(forge, tmp_path, forge_name, ordering):
    _plays_as_the_model_says(forge, tmp_path, forge_name, ORDERINGS[ordering])


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(6))
def test_a_sample_of_the_model_s_schedules_ends_as_the_model_says(forge, tmp_path, seed):
    rng = random.Random(seed)
    scenario = Scenario(racing_model.PATTERNS[3][seed % 3], racing_model.OLDER[seed // 2 % 3])
    _plays_as_the_model_says(forge, tmp_path, "gitflic" if seed % 2 else "gitea", racing_model.sample(scenario, rng))


def _plays_as_the_model_says(forge, tmp_path, forge_name: str, schedule: Schedule) -> None:
    world, happened = racing_model.replay(schedule)
    expected = racing_model.ending(schedule.scenario, world)
    ended, logs = _play(forge, tmp_path, forge_name, schedule)
    story = "\n".join(happened)
    assert ended == expected, f"the model:\n{story}\nexpected {expected}, the jobs ended with {ended}:\n{logs}"
    assert ended.left, story
    for log in logs.values():
        errors = [line for line in log.splitlines() if line.startswith("Error: ")]
        assert "Traceback" not in log and len(errors) <= 1, log
        assert all("with other content" in error for error in errors), log
