"""Settlement: which copy of a name a job keeps, names and removes, when jobs publish it at once.

The rules are pure functions of what a job saw, so that the program (``uploads.py``) and the
checker that tries every interleaving of racing jobs (``tests/racing_model.py``) run the same
decisions. Without compare-and-set on the forges a job can rely only on this:

- a copy is there from its arrival until someone removes it, and copies are listed in arrival order;
- a job removes only the copies that were there when it started (as a later run replaces them)
  and its own upload; so a copy that arrived after a job started is not that job's to remove;
- among copies with a job's bytes, the ones after the last copy with other bytes are the newest
  publication of those bytes, and the first of them stands for all jobs that built them.

A job that is not sure which copy is its own (an upload whose answer was lost) starts again:
what landed is then a copy that was there when it started.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Copy:
    """One stored copy of a name, in the forge's order: ``same`` when it holds the job's bytes."""

    id: str
    same: bool


@dataclass(frozen=True)
class Start:
    """What a job does with a name, decided from the copies it found (``older``, their ids).

    ``keep``: a copy that already holds the job's bytes, which it names instead of uploading;
    then ``remove`` are the other copies it replaces. ``refused``: the forge cannot replace what
    is there (or the user said not to), so the job stops before any change.
    """

    older: tuple[str, ...]
    keep: str | None = None
    remove: tuple[str, ...] = ()
    refused: bool = False


@dataclass(frozen=True)
class Settled:
    """What a job does once its upload is stored: names ``named``, removes ``remove``, and fails
    naming ``conflicts``, the copies with other bytes that arrived after it started."""

    named: str
    remove: tuple[str, ...]
    conflicts: tuple[str, ...]


def newest(copies: Sequence[Copy]) -> list[Copy]:
    """The copies with the job's bytes after the last copy with other bytes."""
    last_other = max((n for n, copy in enumerate(copies) if not copy.same), default=-1)
    return list(copies[last_other + 1 :])


def start(copies: Sequence[Copy], *, can_delete: bool, overwrite: bool) -> Start:
    """Keep the first of the newest copies with the job's bytes, replacing the rest; or upload."""
    older = tuple(copy.id for copy in copies)
    replaceable = can_delete and overwrite
    if any(not copy.same for copy in copies) and not replaceable:
        return Start(older, refused=True)
    found = newest(copies)
    if not found:
        return Start(older)
    keep = found[0].id
    return Start(older, keep, tuple(i for i in older if i != keep) if replaceable else ())


def settle(copies: Sequence[Copy], begun: Start, own: str) -> Settled:
    """After the job's own copy ``own`` was stored: the copies as they are now decide.

    Its copy is gone only if a job that started after it arrived replaced it, as a later run
    would: it stays named. An identical copy that follows every copy with other bytes and
    precedes the job's own is the one that stands; the job's own goes. Otherwise the job's copy
    stands and the copies that were there when the job started go.
    """
    ids = [copy.id for copy in copies]
    conflicts = tuple(copy.id for copy in copies if not copy.same and copy.id not in begun.older)
    found = newest(copies)
    if own not in ids:
        return Settled(found[0].id if found else own, (), conflicts)
    if found and ids.index(found[0].id) < ids.index(own):
        return Settled(found[0].id, (own,), conflicts)
    return Settled(own, tuple(i for i in ids if i in begun.older), conflicts)
