"""Uploads: decide what each file needs, then upload, verify and replace.

A plan is made before anything changes on the forge, so a refused overwrite
fails the run while the release is still untouched. Which copy of a name a job
keeps, names and removes, when other jobs publish that name at the same moment,
is settlement's decision; this module reads the copies and carries it out.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

from . import settlement
from .artifacts import Artifact, FileChangedError, HashingReader
from .errors import ActionError, Cancelled, ForgeError, TransientError
from .forges import Asset, Forge, Release
from .log import Progress, size_text
from .retries import RetryPolicy
from .settlement import Copy, Start
from .verification import GONE, VerificationError, describe_problems, problems, same_content

log = logging.getLogger(__name__)

#: Reads of one name's copies while copies vanish as they are hashed (other jobs removing them).
READS = 5

#: The most bytes one request of several files carries: a file larger goes alone, with progress lines and
#: retries of its own, and a retry of a batch resends at most this. At 100 Mbit/s, under a second.
BATCH_BYTES = 8 << 20

UPLOAD, REPLACE, UNCHANGED = "upload", "replace", "unchanged"
STATUS = {UPLOAD: "uploaded", REPLACE: "replaced", UNCHANGED: "unchanged"}
REMOVED = "removed"


@dataclass
class Step:
    """What one file needs: ``begun`` is settlement's decision from ``copies``, the copies of its
    name found when the run started."""

    artifact: Artifact
    begun: Start
    copies: list[Asset] = field(default_factory=list)

    @property
    def action(self) -> str:
        return UNCHANGED if self.keep is not None else REPLACE if self.copies else UPLOAD

    @property
    def keep(self) -> Asset | None:
        """The copy that already holds the file, named instead of uploading it."""
        return next((asset for asset in self.copies if asset.id == self.begun.keep), None)

    @property
    def stale(self) -> list[Asset]:
        """The copies the file replaces, removed once a copy with its bytes is there."""
        gone = self.begun.remove if self.keep is not None else self.begun.older
        return [asset for asset in self.copies if asset.id in gone]


@dataclass(frozen=True)
class Plan:
    """What the run will do to the release's files: ``steps`` one per local file, then, once every
    upload is verified, ``removals``: the assets this run does not publish (``remove_other_assets``).
    ``overwrite``: whether a copy with other bytes may be replaced (``overwrite_files``)."""

    steps: list[Step]
    removals: list[Asset] = field(default_factory=list)
    overwrite: bool = True


@dataclass(frozen=True)
class Outcome:
    """What became of one file: ``artifact`` is None for an asset this run removed."""

    artifact: Artifact | None
    asset: Asset
    status: str

    @property
    def sha256(self) -> str:
        if self.artifact is None:
            return self.asset.digests.get("sha256", "")
        return self.artifact.digest()


def plan(
    forge: Forge,
    release: Release | None,
    artifacts: list[Artifact],
    *,
    overwrite: bool,
    remove_others: bool = False,
    also_published: frozenset[str] = frozenset(),
) -> Plan:
    """``also_published`` names files the run publishes later (a checksums file): never removed."""
    return Plan(
        _steps(forge, release, artifacts, overwrite=overwrite),
        _others(release, {a.name for a in artifacts} | also_published) if remove_others else [],
        overwrite,
    )


def _others(release: Release | None, published: set[str]) -> list[Asset]:
    return [asset for asset in release.assets if asset.name not in published] if release else []


def _steps(forge: Forge, release: Release | None, artifacts: list[Artifact], *, overwrite: bool) -> list[Step]:
    steps = []
    for artifact in artifacts:
        copies = release.assets_named(artifact.name) if release else []
        seen = [Copy(asset.id, same_content(forge, artifact, asset)) for asset in copies]
        steps.append(
            Step(artifact, settlement.start(seen, can_delete=forge.can_delete_assets, overwrite=overwrite), copies)
        )
    refused = [step.artifact.name for step in steps if step.begun.refused]
    if refused and release is not None:  # a refusal is of copies, which only a release holds
        raise ActionError(_refusal(forge, release.tag, refused))
    return steps


def _refusal(forge: Forge, tag: str, names: list[str], *, arrived: bool = False) -> str:
    """The sentence for copies with other bytes that this run may not replace; ``arrived``: since it started."""
    why = (
        f"{forge.title} cannot delete or replace an asset through its API; remove it in the web interface"
        " and run again, or publish under a new tag"
        if not forge.can_delete_assets
        else "overwrite_files is false; set overwrite_files to true to replace them, or publish under another tag"
    )
    holds = "now holds" if arrived else "already has"
    since = " stored while this job uploaded it" if arrived else ""
    return f"Release {tag} {holds} {', '.join(names)} with different content{since}, and {why}."


def batches(steps: list[Step], per_request: int) -> list[list[int]]:
    """The steps' indexes as units of work, in the plan's order: a file left unchanged alone, and the
    files to send in batches of at most ``per_request`` files and BATCH_BYTES (a larger file alone)."""
    units: list[list[int]] = []
    batch: list[int] = []
    size = 0
    for index, step in enumerate(steps):
        if step.action == UNCHANGED or step.artifact.size > BATCH_BYTES or per_request < 2:
            units.append([index])
            continue
        if len(batch) == per_request or size + step.artifact.size > BATCH_BYTES:
            units.append(batch)
            batch, size = [], 0
        batch.append(index)
        size += step.artifact.size
    return units + [batch] if batch else units


def requests_needed(plan: Plan, per_request: int = 1) -> int:
    """API requests the plan will make on a clean run: an upload (of up to ``per_request`` files) and a
    delete each count one."""
    uploads = sum(plan.steps[unit[0]].action != UNCHANGED for unit in batches(plan.steps, per_request))
    return uploads + sum(bool(step.stale) for step in plan.steps) + bool(plan.removals)


def describe_plan(plan: Plan) -> list[str]:
    return [
        *(describe(step) for step in plan.steps),
        *(f"remove {asset.name} (not published by this run)" for asset in plan.removals),
    ]


def remove_others(forge: Forge, release: Release, removals: list[Asset]) -> list[Outcome]:
    """Remove the assets this run does not publish: called only once every upload is verified."""
    if not removals:
        return []
    names = ", ".join(asset.name for asset in removals)
    try:
        forge.delete_assets(release, removals)
    except ForgeError as error:
        raise ForgeError(
            f"Every file of release {release.tag} was published, but the others could not be removed"
            f" ({names}); run again ({error})",
            error.status,
        ) from None
    log.info("Removed %d asset(s) this run does not publish: %s.", len(removals), names)
    return [Outcome(None, asset, REMOVED) for asset in removals]


def describe(step: Step) -> str:
    artifact = step.artifact
    size = size_text(artifact.size) + (f", from {artifact.path}" if artifact.name != artifact.path.name else "")
    stale = f"; then remove {len(step.stale)} older copy(ies)" if step.stale else ""
    return {
        UPLOAD: f"upload {step.artifact.name} ({size})",
        REPLACE: f"replace {step.artifact.name} ({size}{stale})",
        UNCHANGED: f"leave {step.artifact.name} as it is ({size}: identical content on the forge{stale})",
    }[step.action]


def carry_out(
    forge: Forge, release: Release, plan: Plan, *, verify: bool, policy: RetryPolicy, parallel: int = 1
) -> list[Outcome]:
    """Carry out the plan's steps, ``parallel`` files at a time; outcomes come back in the plan's order.
    ``release`` is the release as it is now: another job may have made it, or added to it, since the plan."""
    return _Uploads(forge, release, overwrite=plan.overwrite, verify=verify, policy=policy).run(plan.steps, parallel)


@dataclass(frozen=True)
class _Sent:
    """A file this run uploaded: how its job began (after any start over) and the copy it stored."""

    begun: Start
    own: Asset


class _Uploads:
    """One run's uploads: what they share, and how the first failure or a cancel stops the rest."""

    def __init__(self, forge: Forge, release: Release, *, overwrite: bool, verify: bool, policy: RetryPolicy):
        self.forge = forge
        self.release = release
        self.overwrite = overwrite
        self.verify = verify
        self.policy = policy
        #: The files this run uploaded, by name: settled once all are stored.
        self.sent: dict[str, _Sent] = {}
        #: The names this run publishes: a copy under one of them is never another file of it, renamed.
        self.names: frozenset[str] = frozenset()
        #: Whether several files still go in one request: until the forge drops or refuses some of a batch.
        self.batching = forge.max_files_per_upload > 1
        #: Set on the first failure or a cancel: uploads in flight stop at their next piece.
        self.stop = threading.Event()

    def run(self, steps: list[Step], parallel: int) -> list[Outcome]:
        if not steps:
            return []
        self.names = frozenset(step.artifact.name for step in steps)
        units = batches(steps, self.forge.max_files_per_upload)
        done: dict[int, Outcome] = {}
        pool = ThreadPoolExecutor(max_workers=min(parallel, len(units)), thread_name_prefix="upload")
        futures = {}
        try:
            # Submitting is inside: a cancel may arrive while the first uploads already run.
            for unit in units:
                futures[pool.submit(self._unit, [steps[index] for index in unit])] = unit
            for future in as_completed(futures):
                done.update(zip(futures[future], future.result(), strict=True))
        except BaseException as error:
            self.stop.set()
            cancelled = isinstance(error, (Cancelled, KeyboardInterrupt))
            # A cancel does not wait for an upload held by the forge: the job must stop within seconds,
            # and the process leaves without joining the thread (cli.run). A failure lets the others
            # stop at their next piece, so none is cut off midway.
            pool.shutdown(wait=not cancelled, cancel_futures=True)
            if cancelled:
                unfinished = [s.artifact.name for i, s in enumerate(steps) if i not in done and s.action != UNCHANGED]
                raise Cancelled(
                    f"Cancelled; these uploads did not finish: {', '.join(unfinished) or 'none'}."
                ) from None
            raise
        pool.shutdown(wait=True)
        outcomes = [done[index] for index in range(len(steps))]
        # Jobs uploading one name at once meet here, on a forge that can remove a copy: an upload's
        # answer shows the others' copies late (GitFlic) or never (Gitea's dialect).
        if self.sent and self.forge.can_delete_assets:
            outcomes = self._settle(outcomes)
        return outcomes

    def _unit(self, steps: list[Step]) -> list[Outcome]:
        if len(steps) == 1 or not self.batching:
            return [self._one(step) for step in steps]
        return self._batch(steps)

    def _one(self, step: Step) -> Outcome:
        artifact = step.artifact
        if step.keep is not None:
            log.info("%s is already on the forge with the same content; left alone.", artifact.name)
            self._remove({artifact.name: step.stale})
            asset = step.keep
        else:
            log.info("Uploading %s (%s).", artifact.name, size_text(artifact.size))
            asset = self.upload(artifact, step.begun)
        return self._unchanged(step, asset)

    def _unchanged(self, step: Step, asset: Asset) -> Outcome:
        """The file's outcome, once it is known to be still the file that was read; its copy is removed
        where it is not."""
        artifact = step.artifact
        try:
            artifact.check_unchanged()
        except FileChangedError:
            sent = self.sent.pop(artifact.name, None)
            if sent is not None and self.forge.can_delete_assets:
                self.forge.delete_assets(self.release, [sent.own])
            raise
        return Outcome(artifact, asset, STATUS[step.action])

    def _batch(self, steps: list[Step]) -> list[Outcome]:
        """Send the files in one request; a file the forge did not store from it goes alone."""
        begun = {step.artifact.name: step.begun for step in steps}
        landed, refused = self._send_together([step.artifact for step in steps], begun)
        outcomes = []
        for step in steps:
            asset = landed.get(step.artifact.name)
            if asset is None:
                log.info("Uploading %s (%s) alone.", step.artifact.name, size_text(step.artifact.size))
                asset = self.upload(step.artifact, begun[step.artifact.name])
            outcomes.append(self._unchanged(step, asset))
        if refused is not None and len(landed) < len(steps):
            self._one_per_request(f"{self.forge.title} refused {len(steps)} files in one request, but took each alone")
        return outcomes

    def _one_per_request(self, why: str) -> None:
        """No more batches in this run: say why, and where the forge limits requests, what it may cost."""
        if not self.batching:
            return
        self.batching = False
        limit = self.forge.hourly_request_limit
        cost = (
            f"; with {len(self.names)} files this run may pass the {limit} requests an hour {self.forge.title}"
            " allows, and then waits for the limit to reset"
            if limit is not None and len(self.names) > limit
            else ""
        )
        log.warning("%s; the rest of this run's files go one per request%s.", why, cost)

    def _send_together(
        self, artifacts: list[Artifact], begun: dict[str, Start]
    ) -> tuple[dict[str, Asset], ForgeError | None]:
        """Upload the files in one request until each is stored or known to need a request of its own.

        The copies each file stored, by name, and the forge's refusal of the request, if it refused it:
        the files it lacks then go one per request, which tells which file it refused. Before another
        attempt, and after a refusal, the release is read, so that a file that landed is not sent again
        (``begun`` follows each file's start over)."""
        pending = {artifact.name: artifact for artifact in artifacts}
        landed: dict[str, Asset] = {}
        refused: list[ForgeError] = []

        def attempt() -> bool:
            files = list(pending.values())
            starts = list(itertools.accumulate((artifact.size for artifact in files), initial=0))
            label = f"{len(files)} files in one request"
            log.info("Uploading %s (%s): %s.", label, size_text(starts[-1]), ", ".join(pending))
            progress = _Progress(label, starts[-1], self.stop)
            parts = [_Part(artifact, progress.part(start)) for artifact, start in zip(files, starts[:-1], strict=True)]
            try:
                after = self.forge.upload_assets(
                    self.release, [(part.artifact.name, part, part.artifact.size) for part in parts]
                )
            except TransientError:
                raise
            except ForgeError as error:
                refused.append(error)
                return True
            finally:
                for part in parts:
                    part.close()
            progress.done()
            self._take(after, files, begun, pending, landed)
            return True

        def start_over() -> bool | None:
            self._resume(self.forge.refresh(self.release), pending, begun, landed)
            return True if not pending else None

        what = f"uploading {', '.join(pending)}"
        self.policy.call(attempt, what=what, before_retry=start_over, cancel=self.stop)
        if refused:
            self._resume(self.forge.refresh(self.release), pending, begun, landed)
        return landed, refused[0] if refused else None

    def _take(
        self,
        after: Release,
        files: list[Artifact],
        begun: dict[str, Start],
        pending: dict[str, Artifact],
        landed: dict[str, Asset],
    ) -> None:
        """Take the copies a batch's answer lists. A copy stored wrongly is removed and the batch's
        rest sent again; a file the answer lacks is looked for in the release, and one not there
        shows a forge that stores fewer files than it is sent: no more batches then."""
        lacking, wrong = [], None
        for artifact in files:
            try:
                own = self._stored(artifact, after, begun[artifact.name])
            except VerificationError as error:
                wrong = wrong or error
                continue
            except TransientError:
                lacking.append(artifact.name)
                continue
            landed[artifact.name] = own
            self.sent[artifact.name] = _Sent(begun[artifact.name], own)
            del pending[artifact.name]
        if wrong is not None:
            raise wrong
        if not lacking:
            return
        self._resume(self.forge.refresh(self.release), pending, begun, landed)
        if pending:
            stored = len(files) - len(pending)
            self._one_per_request(f"{self.forge.title} stored {stored} of the {len(files)} files sent in one request")

    def _resume(
        self, now: Release, pending: dict[str, Artifact], begun: dict[str, Start], landed: dict[str, Asset]
    ) -> None:
        """Start each pending file over from the release as it is ``now``: one that landed is taken."""
        for name, artifact in list(pending.items()):
            now, begun[name], asset = self._start_over(artifact, now)
            if asset is not None:
                landed[name] = asset
                del pending[name]

    def _start_over(self, artifact: Artifact, release: Release) -> tuple[Release, Start, Asset | None]:
        """Decide for the file as a job starting now would, from ``release`` (read again where copies
        vanish as they are read): the release read, how the job begins, and the copy it keeps, if any."""
        now, copies = self._read(artifact, release)
        begun = settlement.start(copies, can_delete=self.forge.can_delete_assets, overwrite=self.overwrite)
        if begun.refused:
            raise ForgeError(_refusal(self.forge, now.tag, [artifact.name], arrived=True))
        if begun.keep is None:
            return now, begun, None
        listed = {asset.id: asset for asset in now.assets_named(artifact.name)}
        log.info(
            "%s is on the forge already (an attempt whose answer was lost, or another job, stored it);"
            " not sending it again.",
            artifact.name,
        )
        self._remove({artifact.name: [listed[i] for i in begun.remove]})
        return now, begun, listed[begun.keep]

    def _remove(self, copies: dict[str, list[Asset]]) -> None:
        """Remove the copies of each file's name that settlement gave up: only once a copy with its bytes
        is there. All in one call, which is one request where the forge deletes several files at once
        (GitFlic): a rerun replacing a thousand files stays within the hourly budget."""
        copies = {name: found for name, found in copies.items() if found}
        if not copies:
            return
        every = [asset for found in copies.values() for asset in found]
        try:
            self.forge.delete_assets(self.release, every)
        except ForgeError as error:
            one = len(copies) == 1
            raise ForgeError(
                f"{', '.join(copies)} {'is' if one else 'are'} published, but {len(every)} other copy(ies) of"
                f" {'it' if one else 'them'} could not be removed, so release {self.release.tag} holds more than"
                f" one{'' if one else ' of each'}; run again or remove them by hand ({error})",
                error.status,
            ) from None
        for name, found in copies.items():
            log.info("Removed %d other copy(ies) of %s.", len(found), name)

    def upload(self, artifact: Artifact, begun: Start) -> Asset:
        """Upload one file until a copy with its bytes is stored, and return that copy.

        A job unsure whether an attempt landed (its answer was lost) starts over: it reads the
        release and decides as a job starting now would, so a copy that landed is kept, not sent again.
        """

        def attempt() -> Asset:
            progress = _Progress(artifact.name, artifact.size, self.stop)
            with artifact.open(progress) as reader:
                try:
                    after = self.forge.upload_asset(self.release, artifact.name, reader, artifact.size)
                except TransientError:
                    raise
                except ForgeError as error:
                    raise ForgeError(f"Uploading {artifact.name} failed: {error}", error.status) from None
            progress.done()
            own = self._stored(artifact, after, begun)
            self.sent[artifact.name] = _Sent(begun, own)
            return own

        def start_over() -> Asset | None:
            nonlocal begun
            _, begun, asset = self._start_over(artifact, self.forge.refresh(self.release))
            return asset

        return self.policy.call(attempt, what=f"uploading {artifact.name}", before_retry=start_over, cancel=self.stop)

    def _stored(self, artifact: Artifact, after: Release, begun: Start) -> Asset:
        """The copy this upload stored: the newest of its name in the upload's answer. A wrong one is
        removed where the forge can, and a VerificationError asks for another attempt."""
        forge = self.forge
        arrivals = [asset for asset in after.assets if asset.id not in begun.older]
        mine = [asset for asset in arrivals if asset.name == artifact.name]
        if not mine:
            self._refuse_renamed(artifact, after, arrivals)
            raise TransientError(f"{forge.title} accepted {artifact.name} but does not list it in release {after.tag}")
        found = problems(forge, artifact, mine[-1], hashes=self.verify)
        if found == [GONE]:  # starting over reads the release, and tells a broken download link from this
            raise TransientError(f"{artifact.name} was stored, but that copy was removed at once")
        if found and not forge.can_delete_assets:
            # Another upload would sit beside the bad copy: stop and say so.
            raise ForgeError(
                f"{describe_problems(forge, artifact, found)}; it cannot be removed through the API, so remove it"
                f" from release {after.tag} in the web interface and run again"
            )
        if found:
            forge.delete_assets(after, mine[-1:])
            raise VerificationError(describe_problems(forge, artifact, found))
        return mine[-1]

    def _read(self, artifact: Artifact, release: Release) -> tuple[Release, list[Copy]]:
        """The copies of the file's name as settlement sees them. A copy another job removes while it is
        hashed makes the job read the release again, so that the copies are those of one moment."""
        for _ in range(READS):
            copies = release.assets_named(artifact.name)
            found = {asset.id: problems(self.forge, artifact, asset, hashes=self.verify) for asset in copies}
            gone = [asset for asset in copies if found[asset.id] == [GONE]]
            if not gone:
                return release, [Copy(asset.id, not found[asset.id]) for asset in copies]
            release = self.forge.refresh(release)
            if any(asset.id == listed.id for asset in gone for listed in release.assets):
                # Still listed: it is the forge's download that fails, not another job that removed it.
                raise ForgeError(
                    f"{self.forge.title} lists {artifact.name} in release {release.tag}, but downloading it"
                    " to check it answers that it does not exist; check the forge's download links (a"
                    " proxy in front of its web side, say), or set verify to false"
                )
        raise ForgeError(
            f"Copies of {artifact.name} kept being removed from release {release.tag} while this job read"
            " them; run again once the other jobs publishing it have finished"
        )

    def _refuse_renamed(self, artifact: Artifact, after: Release, arrivals: list[Asset]) -> None:
        """A copy with this file's bytes under another name is this upload, renamed by the forge; not
        a copy of another file of this run (two files alike, sent in one request or side by side)."""
        renamed = [
            asset
            for asset in arrivals
            if asset.name not in self.names | {artifact.name} and same_content(self.forge, artifact, asset)
        ]
        if not renamed:
            return
        names = ", ".join(f"'{asset.name}'" for asset in renamed)
        if self.forge.can_delete_assets:
            self.forge.delete_assets(after, renamed)
            fate = "the copy was removed"
        else:
            fate = f"remove it from release {after.tag} in the web interface"
        raise ForgeError(
            f"{self.forge.title} stored {artifact.name} under the name {names}; {fate}, and rename the"
            " file to plain letters, digits and punctuation before publishing it"
        )

    def _settle(self, outcomes: list[Outcome]) -> list[Outcome]:
        """Read the release once more and settle each file this run uploaded (``settlement.settle``).

        A copy with other bytes that another job stored after this one started is not this job's to
        remove: the job says so and fails, once everything else is done.
        """
        current = self.forge.refresh(self.release)
        settled, conflicts = [], []
        removals: dict[str, list[Asset]] = {}
        for outcome in outcomes:
            artifact = outcome.artifact
            sent = self.sent.get(artifact.name) if artifact is not None else None  # None: a removed asset's
            if artifact is None or sent is None:
                settled.append(outcome)
                continue
            current, copies = self._read(artifact, current)
            decided = settlement.settle(copies, sent.begun, sent.own.id)
            listed = {asset.id: asset for asset in current.assets_named(artifact.name)}
            if decided.named not in listed:
                log.info("A job that started after %s was stored replaced it, as a later run would.", artifact.name)
            elif decided.named != sent.own.id:
                log.info("Another job stored an identical %s first; using that copy.", artifact.name)
            removals[artifact.name] = [listed[i] for i in decided.remove if i in listed]
            conflicts += [artifact.name] if decided.conflicts else []
            settled.append(Outcome(artifact, listed.get(decided.named, sent.own), outcome.status))
        self._remove(removals)
        if conflicts:
            raise ForgeError(
                f"Another job stored {', '.join(conflicts)} with other content in release"
                f" {self.release.tag} after this job started; give each job's files their own names"
                " (a checksums file from one job only)"
            )
        return settled


class _Part:
    """A file of a batch as the request's body reads it: opened when the body reaches it and closed
    once read, so that a batch holds one file's buffers and hashing thread at a time, as an upload of
    one file does."""

    def __init__(self, artifact: Artifact, on_progress: Callable[[int], None]):
        self.artifact = artifact
        self._on_progress = on_progress
        self._reader: HashingReader | None = None
        self._read = False

    def read(self, size: int = -1) -> memoryview | bytes:
        if self._read:
            return b""
        if self._reader is None:
            self._reader = self.artifact.open(self._on_progress)
        piece = self._reader.read(size)
        if not piece:
            self.close()
        return piece

    def close(self) -> None:
        self._read = True
        if self._reader is not None:
            self._reader.close()
            self._reader = None


class _Progress(Progress):
    """An upload's progress lines (log.Progress), and the point where it stops when the run is stopping.
    The files of a batch share one: each file's reader reports from where the file begins (``part``)."""

    def __init__(self, name: str, size: int, stop: threading.Event):
        super().__init__(name, size)
        self._stop = stop

    def __call__(self, sent: int) -> None:
        if self._stop.is_set():
            raise Cancelled(f"Stopped uploading {self._name}.")
        self.advance(sent)

    def part(self, start: int) -> Callable[[int], None]:
        return lambda sent: self(start + sent)
