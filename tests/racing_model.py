"""Racing jobs as a model: every interleaving of their forge requests, checked against the promise.

Jobs publish one name to one release, each its own build (letters: jobs with one letter built the
name alike), perhaps over a copy stored before they started. Every step of a job is one forge
request: a read, an upload, a removal; after any of them a job may stop for good (its retries
spent, a refusal, a cancel). An upload's answer may be lost, after its copy landed or
before; a removal of a copy already gone is answered 404, which is success (so a removal whose
answer is lost, sent again and answered 404, is a removal followed by other jobs' requests, which
the search tries anyway; and a lost read is a later read). The forge lists
copies in arrival order (GitFlic, Gitea) or cannot delete (SourceCraft). The decisions are
``release_action.settlement``'s own functions; what joins them is ``uploads.py``'s order: start
(keep and replace, or upload), after a lost answer start over, settle on a final read, remove.

``explore`` walks every schedule depth first; schedules that reach one state share the work
after it (its count of schedules is the sum of its successors'). The invariants are checked at
the end of every schedule, the removal rule at every removal. By hand, for the counts, four
jobs, or the counterexample to the stronger promise that a job's named copy always stays:

    .venv/bin/python tests/racing_model.py [--jobs 4] [--lost 2] [--stops 0] [--strong]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from release_action import settlement  # noqa: E402
from release_action.settlement import Copy, Start  # noqa: E402

#: Builds per job, by the number of jobs: all alike, some alike and one different, all different
#: (four different jobs are left out: their search takes hours).
PATTERNS = {2: ("XX", "XY"), 3: ("XXX", "XXY", "XYZ"), 4: ("XXXX", "XXXY", "XXYY")}
#: What the release holds before the jobs start: nothing, an older build, or a copy of job A's bytes.
OLDER = (None, "O", "X")


@dataclass(frozen=True)
class Scenario:
    builds: str
    older: str | None = None
    can_delete: bool = True
    #: How many upload answers may be lost in one schedule.
    lost: int = 1
    #: How many jobs may stop for good after any request (retries spent, a refusal, a cancel).
    stops: int = 0

    def __str__(self) -> str:
        forge = "arrival order" if self.can_delete else "cannot delete"
        stops = f", {self.stops} stops" if self.stops else ""
        return f"{len(self.builds)} jobs {self.builds}, older {self.older or '-'}, {forge}, {self.lost} lost{stops}"

    @property
    def alike(self) -> bool:
        return len(set(self.builds)) == 1


class Stored(NamedTuple):
    build: str
    #: The job that uploaded it; -1 for the copy stored before the jobs started.
    uploader: int


class Job(NamedTuple):
    step: str  # "start", "upload", "settle", "remove" or "done"
    begun: Start | None = None
    own: int | None = None
    named: int | None = None
    todo: tuple[int, ...] = ()
    #: Why it failed, with the copies its sentence names: ("refused", ids) or ("conflict", ids).
    failed: tuple[str, tuple[int, ...]] | None = None


class World(NamedTuple):
    listed: tuple[int, ...]
    stored: tuple[Stored, ...]
    jobs: tuple[Job, ...]
    lost: int
    #: Copies removed by a job that found them when it started, as a later run replaces them.
    replaced: frozenset[int] = frozenset()
    #: Jobs that may still stop for good.
    stops: int = 0


class Broken(Exception):
    """An invariant does not hold: the message says which, and the schedule that breaks it."""


def initial(scenario: Scenario) -> World:
    stored = (Stored(scenario.older, -1),) if scenario.older else ()
    return World(
        tuple(range(len(stored))),
        stored,
        tuple(Job("start") for _ in scenario.builds),
        scenario.lost,
        stops=scenario.stops,
    )


def name(job: int) -> str:
    return "ABCDEFGH"[job]


def show(world: World, ids) -> str:
    return "[" + ", ".join(f"#{i} {world.stored[i].build}" for i in ids) + "]"


def seen_by(scenario: Scenario, world: World, job: int) -> list[Copy]:
    """One read: the copies listed, each telling whether it holds the job's bytes."""
    return [Copy(i, world.stored[i].build == scenario.builds[job]) for i in world.listed]


# -- each job's next request --------------------------------------------------------------------


class Move(NamedTuple):
    job: int
    #: The request: "read", "upload", "upload, answer lost", "upload, lost before it lands" or "remove".
    request: str
    label: str
    after: World


def requests(scenario: Scenario, world: World) -> list[Move]:
    """Every request some job can make next."""
    moves = []
    for n, job in enumerate(world.jobs):
        step = STEPS.get(job.step)
        if step is None:
            continue
        moves += [
            Move(n, request, f"{name(n)} {label}", after) for request, label, after in step(scenario, world, n, job)
        ]
        if world.stops:
            stopped = _put(world, n, job._replace(step="done", failed=("stopped", ())), stops=world.stops - 1)
            moves.append(Move(n, "stop", f"{name(n)} stops for good", stopped))
    return moves


def _put(world: World, n: int, job: Job, **changes) -> World:
    jobs = world.jobs[:n] + (job,) + world.jobs[n + 1 :]
    return world._replace(jobs=jobs, **changes)


def start(scenario: Scenario, world: World, n: int, job: Job):
    begun = settlement.start(seen_by(scenario, world, n), can_delete=scenario.can_delete, overwrite=True)
    sees = f"starts, sees {show(world, world.listed)}"
    if begun.refused:
        yield "read", f"{sees}: refused", _put(world, n, Job("done", begun, failed=("refused", begun.older)))
    elif begun.keep is not None:
        keeps = Job("remove" if begun.remove else "done", begun, named=begun.keep, todo=begun.remove)
        yield "read", f"{sees}: keeps #{begun.keep}, removes {list(begun.remove)}", _put(world, n, keeps)
    else:
        yield "read", f"{sees}: uploads", _put(world, n, Job("upload", begun))


def upload(scenario: Scenario, world: World, n: int, job: Job):
    new = len(world.stored)
    landed = dict(listed=world.listed + (new,), stored=world.stored + (Stored(scenario.builds[n], n),))
    after = Job("settle", job.begun, own=new) if scenario.can_delete else Job("done", job.begun, own=new, named=new)
    yield "upload", f"uploads #{new}", _put(world, n, after, **landed)
    if world.lost:
        # Unsure whether it landed, the job starts over from a fresh read, as uploads.py does.
        unsure = dict(lost=world.lost - 1)
        yield (
            "upload, answer lost",
            f"uploads #{new}; the answer is lost",
            _put(world, n, Job("start"), **unsure, **landed),
        )
        yield "upload, lost before it lands", "uploads; lost before it lands", _put(world, n, Job("start"), **unsure)


def settle(scenario: Scenario, world: World, n: int, job: Job):
    decided = settlement.settle(seen_by(scenario, world, n), job.begun, job.own)
    failed = ("conflict", decided.conflicts) if decided.conflicts else None
    after = Job("remove" if decided.remove else "done", job.begun, job.own, decided.named, decided.remove, failed)
    yield (
        "read",
        (
            f"reads {show(world, world.listed)}: names #{decided.named}, removes {list(decided.remove)}"
            + (f", fails naming {list(decided.conflicts)}" if failed else "")
        ),
        _put(world, n, after),
    )


def remove(scenario: Scenario, world: World, n: int, job: Job):
    gone, rest = job.todo[0], job.todo[1:]
    allowed(scenario, world, n, job, gone)
    replaced = world.replaced | ({gone} if gone in job.begun.older and gone in world.listed else set())
    after = job._replace(step="remove" if rest else "done", todo=rest)
    label = f"removes #{gone}" + ("" if gone in world.listed else " (404)")
    yield "remove", label, _put(world, n, after, listed=tuple(i for i in world.listed if i != gone), replaced=replaced)


STEPS: dict[str, Callable] = {"start": start, "upload": upload, "settle": settle, "remove": remove}


# -- the promise --------------------------------------------------------------------------------


def allowed(scenario: Scenario, world: World, n: int, job: Job, gone: int) -> None:
    """A job removes a copy only if it was there when the job started, and only while it names a
    copy with its own bytes; or if the job uploaded it itself."""
    if gone == job.own:
        return
    if gone not in job.begun.older:
        raise Broken(f"{name(n)} removes #{gone}, which arrived after it started and which it did not upload")
    if job.named is None or world.stored[job.named].build != scenario.builds[n]:
        raise Broken(f"{name(n)} removes #{gone} without naming a copy with its own bytes")


def a_copy_is_left(scenario: Scenario, world: World) -> str | None:
    return None if world.listed else "no copy of the name is left"


def each_success_names_a_copy_with_its_bytes_that_stays(scenario: Scenario, world: World) -> str | None:
    """Where the jobs built the name differently, unless a job that started after the copy was stored
    replaced it, as a later run would."""
    for n, job in succeeded(world):
        if world.stored[job.named].build != scenario.builds[n]:
            return f"{name(n)} exits 0 naming #{job.named}, which does not hold its bytes"
        if job.named not in world.listed and (scenario.alike or job.named not in world.replaced):
            return f"{name(n)} exits 0 naming #{job.named}, which is gone" + (
                "" if scenario.alike else ", and no job that started after it was stored replaced it"
            )
    return None


def failures_are_true(scenario: Scenario, world: World) -> str | None:
    for n, job in enumerate(world.jobs):
        why, ids = job.failed or ("", ())
        others = [i for i in ids if world.stored[i].build != scenario.builds[n]]
        if why == "refused" and (scenario.can_delete or not others):
            return f"{name(n)} is refused, but the forge could replace {show(world, ids)}"
        if why == "conflict" and (
            others != list(ids) or any(i in job.begun.older or world.stored[i].uploader in (n, -1) for i in ids)
        ):
            return f"{name(n)} fails naming {show(world, ids)} as other jobs' other bytes that arrived after it started"
    return None


def alike_builds_leave_one_copy(scenario: Scenario, world: World) -> str | None:
    """Unless a job stopped before it settled: its copy stays until the next run."""
    stopped = any(job.failed and job.failed[0] == "stopped" for job in world.jobs)
    if scenario.alike and scenario.can_delete and not stopped and len(world.listed) != 1:
        return f"the jobs built the name alike, and {show(world, world.listed)} are left"
    return None


def other_bytes_left_side_by_side_are_reported(scenario: Scenario, world: World) -> str | None:
    """Where a copy can be removed (the program reads a release that cannot change only to publish)."""
    left = {world.stored[i].build for i in world.listed}
    said = any(job.failed and job.failed[0] in ("conflict", "stopped") for job in world.jobs)
    if scenario.can_delete and len(left) > 1 and not said:
        return f"{show(world, world.listed)} are left with different bytes, and no job said so"
    return None


def each_success_s_copy_stays(scenario: Scenario, world: World) -> str | None:
    """Stronger than the promise, and not kept where the jobs built the name differently: a copy a
    job named is there at the end."""
    for n, job in succeeded(world):
        if job.named not in world.listed:
            return f"{name(n)} exits 0 naming #{job.named}, which is gone"
    return None


def succeeded(world: World):
    return [(n, job) for n, job in enumerate(world.jobs) if job.failed is None]


PROMISE = (
    a_copy_is_left,
    each_success_names_a_copy_with_its_bytes_that_stays,
    failures_are_true,
    alike_builds_leave_one_copy,
    other_bytes_left_side_by_side_are_reported,
)


# -- the search ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    scenario: Scenario
    schedules: int
    states: int
    seconds: float
    #: The broken invariant and the schedule that breaks it; None when every schedule keeps them all.
    broken: str | None = None

    def __str__(self) -> str:
        found = f"BROKEN: {self.broken}" if self.broken else f"{self.schedules:,} schedules, {self.states:,} states"
        return f"{self.scenario}: {found} ({self.seconds:.1f} s)"


def explore(scenario: Scenario, invariants=PROMISE) -> Report:
    """Every schedule of the scenario's jobs, each checked at its end; the first that breaks an
    invariant stops the search."""
    counted: dict[World, int] = {}
    path: list[str] = []

    def schedules(world: World) -> int:
        if world in counted:
            return counted[world]
        moves = requests(scenario, world)
        if not moves:
            broken = next(filter(None, (invariant(scenario, world) for invariant in invariants)), None)
            if broken:
                raise Broken(broken)
        total = 0 if moves else 1
        for move in moves:
            path.append(move.label)
            total += schedules(move.after)
            path.pop()
        counted[world] = total
        return total

    began = time.perf_counter()
    try:
        total = schedules(initial(scenario))
    except Broken as broken:
        steps = "\n".join(f"    {n}. {label}" for n, label in enumerate(path, 1))
        return Report(scenario, 0, len(counted), time.perf_counter() - began, f"{broken}, after:\n{steps}")
    return Report(scenario, total, len(counted), time.perf_counter() - began)


# -- one schedule: what the real program, held in the same order, must do ----------------------


class Schedule(NamedTuple):
    """Requests in the order they are served: (job letter, request), as ``Move.request`` names them."""

    scenario: Scenario
    steps: tuple[tuple[str, str], ...]


def replay(schedule: Schedule) -> tuple[World, list[str]]:
    """The world a schedule leaves, and what happened at each step; ValueError if a job cannot make
    the request the schedule names next."""
    world, happened = initial(schedule.scenario), []
    for letter, request in schedule.steps:
        move = next(
            (m for m in requests(schedule.scenario, world) if name(m.job) == letter and m.request == request), None
        )
        if move is None:
            raise ValueError(f"after {happened}, {letter} cannot make a {request} request")
        world = move.after
        happened.append(move.label)
    if requests(schedule.scenario, world):
        raise ValueError(f"after {happened}, the jobs have requests left to make")
    return world, happened


#: More steps than any schedule of the model takes (each job's requests are few, and none repeats
#: without a lost answer or a stop to spend).
LONGEST = 200


def sample(scenario: Scenario, rng) -> Schedule:
    """A schedule drawn at random; a job's removals of one decision go together, as GitFlic removes
    several copies in one request."""
    world, steps = initial(scenario), []
    for _ in range(LONGEST):
        moves = requests(scenario, world)
        if not moves:
            return Schedule(scenario, tuple(steps))
        move = rng.choice(moves)
        steps.append((name(move.job), move.request))
        world = move.after
        for _ in world.jobs[move.job].todo if move.request == "remove" else ():
            move = next(m for m in requests(scenario, world) if m.job == move.job and m.request == "remove")
            steps.append((name(move.job), move.request))
            world = move.after
    raise AssertionError(f"a schedule longer than {LONGEST} steps: {steps}")


@dataclass(frozen=True)
class Ending:
    """What a schedule leaves, as a user sees it: each job's exit code and the build and place (in
    the copies left; None when gone) of the copy it names, and the builds of the copies left."""

    jobs: tuple[tuple[int, str | None, int | None], ...]
    left: tuple[str, ...]


def ending(scenario: Scenario, world: World) -> Ending:
    jobs = []
    for job in world.jobs:
        named = None if job.failed else job.named
        place = world.listed.index(named) if named in world.listed else None
        jobs.append((1 if job.failed else 0, None if named is None else world.stored[named].build, place))
    return Ending(tuple(jobs), tuple(world.stored[i].build for i in world.listed))


def scenarios(jobs: int = 3, lost: int = 1, stops: int = 1) -> list[Scenario]:
    """Each build pattern of ``jobs`` jobs, without and with a copy already stored, on each forge."""
    return [
        Scenario(builds, older, can_delete, lost, stops)
        for can_delete, builds, older in itertools.product((True, False), PATTERNS[jobs], OLDER)
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=3)
    parser.add_argument("--lost", type=int, default=1, help="upload answers that may be lost in one schedule")
    parser.add_argument("--stops", type=int, default=1, help="jobs that may stop for good in one schedule")
    parser.add_argument("--strong", action="store_true", help="check that every named copy stays, too")
    arguments = parser.parse_args()
    invariants = PROMISE + ((each_success_s_copy_stays,) if arguments.strong else ())
    total = 0
    for scenario in scenarios(arguments.jobs, arguments.lost, arguments.stops):
        report = explore(scenario, invariants)
        print(report, flush=True)
        if report.broken:
            return 1
        total += report.schedules
    print(f"every one of {total:,} schedules keeps the promise")
    return 0


if __name__ == "__main__":
    sys.exit(main())
