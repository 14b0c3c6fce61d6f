"""Racing jobs' settlement, checked over every interleaving (``racing_model``).

Every schedule of two and of three jobs, for each build pattern (all alike, two alike and one
different, all different), without and with an older copy, on a forge that lists copies in arrival
order and on one that cannot delete, with an upload answer lost after or before its copy lands and
a job that may stop for good after any request: the README's promise holds at the end of each, and
each removal keeps the rule. The counts are printed at the end of the session. The rules that once
broke are fed to the same checker, which must find them out.
"""

from __future__ import annotations

import dataclasses

import pytest
import racing_model
from conftest import MODEL_COST
from racing_model import Scenario

from release_action import settlement


@pytest.mark.parametrize("scenario", racing_model.scenarios(2) + racing_model.scenarios(3), ids=str)
def test_every_interleaving_of_two_and_three_jobs_keeps_the_promise(scenario):
    report = racing_model.explore(scenario)
    MODEL_COST["schedules"] += report.schedules
    MODEL_COST["seconds"] += report.seconds
    assert report.broken is None, str(report)
    assert report.schedules > 1


def test_the_stronger_promise_that_a_named_copy_always_stays_breaks_only_where_builds_differ():
    """A job that exits 0 may name a copy that is gone: a job with other bytes that started after it was
    stored replaced it, as a later run would, and nothing short of compare-and-set tells the first job."""
    stronger = racing_model.PROMISE + (racing_model.each_success_s_copy_stays,)
    for scenario in racing_model.scenarios():
        report = racing_model.explore(scenario, stronger)
        assert (report.broken is None) == (scenario.alike or not scenario.can_delete), str(report)
    report = racing_model.explore(Scenario("XXY"), stronger)
    print(f"\nthe stronger promise: {report}")
    assert "C starts, sees [#0 X]: uploads" in report.broken and "C removes #0" in report.broken, report.broken


def _first_identical_arrival_stands_and_removes_the_later_ones(copies, begun, own):
    """The rule before: of the copies that arrived since the job started, the first with its bytes stands,
    and the job removes the later ones, whoever stored them."""
    arrivals = [copy for copy in copies if copy.id not in begun.older]
    same = [copy.id for copy in arrivals if copy.same]
    first = same[0] if same else own
    removed = tuple(same[1:]) + (tuple(i for i in begun.older if i in {c.id for c in copies}) if first == own else ())
    return settlement.Settled(first, removed, ())


def _an_identical_copy_is_kept_beside_newer_ones(copies, *, can_delete, overwrite):
    """The rule before that: an identical copy is kept wherever it is, and the others replaced."""
    same = [copy.id for copy in copies if copy.same]
    older = tuple(copy.id for copy in copies)
    if not same:
        return settlement.Start(older)
    return settlement.Start(older, same[0], tuple(i for i in older if i != same[0]))


@pytest.mark.parametrize(
    "rule, scenario, found",
    [
        # The ordering: A removes C's copy as a later identical one, C removes A's and B's as older.
        (
            {"settle": _first_identical_arrival_stands_and_removes_the_later_ones},
            Scenario("XYX", lost=0),
            "arrived after it started and which it did not upload",
        ),
        # A keeps the older copy with its bytes and removes B's, while B removes the older one.
        (
            {"start": _an_identical_copy_is_kept_beside_newer_ones},
            Scenario("XY", older="X", lost=0),
            "no copy of the name is left",
        ),
    ],
    ids=["later-identical-copies-removed", "older-identical-copy-kept"],
)
def test_the_checker_finds_the_rules_that_broke_before(monkeypatch, rule, scenario, found):
    for name, function in rule.items():
        monkeypatch.setattr(settlement, name, function)
    report = racing_model.explore(scenario)
    print(f"\n{report}")
    assert report.broken is not None and found in report.broken, str(report)


def test_a_job_that_loses_its_answer_starts_over_rather_than_guess_which_copy_is_its_own(monkeypatch):
    """Taking the first copy with its bytes for its own, after a lost answer, names another job's copy,
    which that job may remove: the checker finds it out once the model guesses so."""
    original = racing_model.upload

    def guessing(scenario, world, n, job):
        for request, label, after in original(scenario, world, n, job):
            if request == "upload, answer lost":
                landed = after.listed[-1]
                guess = next(
                    i for i in after.listed if i not in job.begun.older and after.stored[i].build == scenario.builds[n]
                )
                after = racing_model._put(after, n, job._replace(step="settle", own=guess))
                label = f"{label}, takes #{guess} for its own (#{landed} is)"
            yield request, label, after

    monkeypatch.setitem(racing_model.STEPS, "upload", guessing)
    report = racing_model.explore(Scenario("XXX"))
    print(f"\n{report}")
    assert report.broken is not None, str(report)


def test_a_scenario_reads_as_its_builds_and_its_forge():
    assert (
        str(dataclasses.replace(Scenario("XXY", older="O", stops=1), can_delete=False))
        == "3 jobs XXY, older O, cannot delete, 1 lost, 1 stops"
    )
