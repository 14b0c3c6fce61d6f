"""Uploads: decide what each file needs, then upload, verify and replace.

A plan is made before anything changes on the forge, so a refused overwrite
fails the run while the release is still untouched.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

from .artifacts import Artifact, FileChangedError
from .errors import ActionError, Cancelled, ForgeError, TransientError
from .forges import Asset, Forge, Release
from .retries import RetryPolicy
from .verification import GONE, VerificationError, describe_problems, problems, same_content

log = logging.getLogger(__name__)

PROGRESS_EVERY_SECONDS = 5.0

UPLOAD, REPLACE, UNCHANGED = "upload", "replace", "unchanged"
STATUS = {UPLOAD: "uploaded", REPLACE: "replaced", UNCHANGED: "unchanged"}
REMOVED = "removed"


@dataclass
class Step:
    """What one file needs: ``keep`` is the forge's identical copy (if any), ``stale`` the
    same-named copies to remove once the file is safely there."""

    artifact: Artifact
    action: str
    keep: Asset | None = None
    stale: list[Asset] = field(default_factory=list)


@dataclass(frozen=True)
class Plan:
    """What the run will do to the release's files: ``steps`` one per local file, then, once every
    upload is verified, ``removals``: the assets this run does not publish (``remove_other_assets``).
    ``seen``: the ids of the assets the plan was made from; any other copy arrived since."""

    steps: list[Step]
    removals: list[Asset] = field(default_factory=list)
    seen: frozenset[str] = frozenset()


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
    forge: Forge, release: Release | None, artifacts: list[Artifact], *, overwrite: bool,
    remove_others: bool = False, also_published: frozenset[str] = frozenset(),
) -> Plan:
    """``also_published`` names files the run publishes later (a checksums file): never removed."""
    return Plan(_steps(forge, release, artifacts, overwrite=overwrite),
                _others(release, {a.name for a in artifacts} | also_published) if remove_others else [],
                frozenset(asset.id for asset in release.assets) if release else frozenset())


def _others(release: Release | None, published: set[str]) -> list[Asset]:
    return [asset for asset in release.assets if asset.name not in published] if release else []


def _steps(forge: Forge, release: Release | None, artifacts: list[Artifact], *, overwrite: bool) -> list[Step]:
    steps = []
    for artifact in artifacts:
        existing = release.assets_named(artifact.name) if release else []
        same = [n for n, asset in enumerate(existing) if same_content(forge, artifact, asset)]
        if forge.can_delete_assets and len(same) < len(existing):
            # Copies with other bytes beside an identical one: jobs may be racing on the name. An identical
            # copy followed by another may be what a job is replacing right now, so only those after the
            # last other one count, and only where this run may remove the others (keeping one another
            # job gives up could otherwise leave none, or report a copy that is gone).
            last_other = max(n for n in range(len(existing)) if n not in same)
            same = [n for n in same if n > last_other and overwrite]
        keep = existing[same[0]] if same else None
        others = [asset for asset in existing if asset is not keep]
        if keep is not None:
            # Extra identical copies (say, from a run whose answer came too late) go when overwriting is allowed.
            removable = overwrite and forge.can_delete_assets
            steps.append(Step(artifact, UNCHANGED, keep, others if removable else []))
        else:
            steps.append(Step(artifact, REPLACE if existing else UPLOAD, None, others))
    refused = ", ".join(step.artifact.name for step in steps if step.action == REPLACE)
    if refused and not forge.can_delete_assets:
        raise ActionError(
            f"Release {release.tag} already has {refused} with different content, and {forge.title} cannot delete"
            " or replace an asset through its API; remove it in the web interface and run again, or publish"
            " under a new tag."
        )
    if refused and not overwrite:
        raise ActionError(
            f"Release {release.tag} already has {refused} with different content, and overwrite_files"
            " is false; set overwrite_files to true to replace them, or publish under another tag."
        )
    return steps


def requests_needed(plan: Plan) -> int:
    """API requests the plan will make on a clean run: an upload and a delete each count one."""
    return sum((step.action != UNCHANGED) + bool(step.stale) for step in plan.steps) + bool(plan.removals)


def describe_plan(plan: Plan) -> list[str]:
    return [*(describe(step) for step in plan.steps),
            *(f"remove {asset.name} (not published by this run)" for asset in plan.removals)]


def remove_others(forge: Forge, release: Release, removals: list[Asset]) -> list[Outcome]:
    """Remove the assets this run does not publish: called only once every upload is verified."""
    if not removals:
        return []
    names = ", ".join(asset.name for asset in removals)
    try:
        forge.delete_assets(release, removals)
    except ForgeError as error:
        raise ForgeError(f"Every file of release {release.tag} was published, but the others could not be removed"
                         f" ({names}); run again ({error})", error.status) from None
    log.info("Removed %d asset(s) this run does not publish: %s.", len(removals), names)
    return [Outcome(None, asset, REMOVED) for asset in removals]


def describe(step: Step) -> str:
    artifact = step.artifact
    size = _mib(artifact.size) + (f", from {artifact.path}" if artifact.name != artifact.path.name else "")
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
    return _Uploads(forge, release, plan.seen, verify=verify, policy=policy).run(plan.steps, parallel)


class _Uploads:
    """One run's uploads: what they share, and how the first failure or a cancel stops the rest."""

    def __init__(self, forge: Forge, release: Release, seen: frozenset[str], *, verify: bool, policy: RetryPolicy):
        self.forge = forge
        self.release = release
        #: The assets the plan saw: a copy that is not one of them arrived since, from this run or another job.
        self.seen = seen
        self.verify = verify
        self.policy = policy
        #: Names of files that needed another attempt: their release is read once more at the end.
        self.retried: set[str] = set()
        #: Copies this run stored wrong, removed at once (and at the end again, should that have failed).
        self.discarded: set[str] = set()
        #: Set on the first failure or a cancel: uploads in flight stop at their next piece.
        self.stop = threading.Event()

    def run(self, steps: list[Step], parallel: int) -> list[Outcome]:
        if not steps:
            return []
        done: dict[int, Outcome] = {}
        pool = ThreadPoolExecutor(max_workers=min(parallel, len(steps)), thread_name_prefix="upload")
        futures = {}
        try:
            # Submitting is inside: a cancel may arrive while the first uploads already run.
            for index, step in enumerate(steps):
                futures[pool.submit(self._one, step)] = index
            for future in as_completed(futures):
                done[futures[future]] = future.result()
        except BaseException as error:
            self.stop.set()
            cancelled = isinstance(error, (Cancelled, KeyboardInterrupt))
            # A cancel does not wait for an upload held by the forge: the job must stop within seconds,
            # and the process leaves without joining the thread (cli.run). A failure lets the others
            # stop at their next piece, so none is cut off midway.
            pool.shutdown(wait=not cancelled, cancel_futures=True)
            if cancelled:
                unfinished = [s.artifact.name for i, s in enumerate(steps) if i not in done and s.action != UNCHANGED]
                raise Cancelled(f"Cancelled; these uploads did not finish: {', '.join(unfinished) or 'none'}.") from None
            raise
        pool.shutdown(wait=True)
        outcomes = [done[index] for index in range(len(steps))]
        # Jobs uploading one name at once meet here, on a forge that can remove a copy: an upload's
        # answer shows the others' copies late (GitFlic) or never (Gitea's dialect).
        sent = {step.artifact.name for step in steps if step.keep is None}
        racing = sent if self.forge.can_delete_assets else set()
        if self.retried or racing:
            outcomes = self._settle_copies(steps, outcomes, self.retried | racing)
        return outcomes

    def _one(self, step: Step) -> Outcome:
        artifact = step.artifact
        status = STATUS[step.action]
        if step.keep is not None:
            log.info("%s is already on the forge with the same content; left alone.", artifact.name)
            asset = step.keep
            # Copies beside an identical one (an answer that came too late, say) can go at once.
            self._remove_older(artifact, step.stale)
            if step.stale and not any(stored.id == asset.id for stored in self.forge.refresh(self.release).assets):
                # The copy kept was another job's, which gave it up meanwhile: this run's own takes its place.
                log.info("Another job removed the copy of %s kept here; uploading it.", artifact.name)
                self.retried.add(artifact.name)
                asset, status = self.upload(artifact), STATUS[REPLACE]
        else:
            log.info("Uploading %s (%s).", artifact.name, _mib(artifact.size))
            asset = self.upload(artifact)
        try:
            artifact.check_unchanged()
        except FileChangedError:
            if step.keep is None and self.forge.can_delete_assets:
                self.forge.delete_assets(self.release, [asset])
            raise
        return Outcome(artifact, asset, status)

    def _remove_older(self, artifact: Artifact, stale: list[Asset]) -> None:
        """Remove the copies a verified one replaces."""
        if not stale:
            return
        try:
            self.forge.delete_assets(self.release, stale)
        except ForgeError as error:
            raise ForgeError(
                f"{artifact.name} was uploaded, but its older copy could not be removed, so release"
                f" {self.release.tag} now holds both the old and the new copy; run again or remove the"
                f" older one by hand ({error})", error.status,
            ) from None
        log.info("Removed %d older copy(ies) of %s.", len(stale), artifact.name)

    def upload(self, artifact: Artifact) -> Asset:
        """Upload one file until one correct copy is stored, and return that copy.

        Before a retry the release is read again: a copy that landed although its
        answer was lost is kept if it is right.
        """
        forge, release = self.forge, self.release

        def attempt() -> Asset:
            progress = _Progress(artifact, self.stop)
            with artifact.open(progress) as reader:
                try:
                    after = forge.upload_asset(release, artifact.name, reader, artifact.size)
                except TransientError:
                    raise
                except ForgeError as error:
                    raise ForgeError(f"Uploading {artifact.name} failed: {error}", error.status) from None
            progress.done()
            return self._settle(artifact, after, just_sent=True)

        def landed_earlier() -> Asset | None:
            self.retried.add(artifact.name)
            return self._settle(artifact, forge.refresh(release), just_sent=False)

        return self.policy.call(attempt, what=f"uploading {artifact.name}", before_retry=landed_earlier,
                                cancel=self.stop)

    def _settle(self, artifact: Artifact, after: Release, *, just_sent: bool) -> Asset | None:
        """Which stored copy stands for ``artifact``, given the release as it is after an upload.

        Only copies that arrived since the plan count, and of those only the ones with this file's
        bytes: a copy with other bytes may be another job's, which settles it itself. Right after
        sending, the newest copy is this upload's: if it is wrong it is removed, where the forge
        can, and a VerificationError asks for another attempt. Otherwise the first right copy
        stands (the first in the forge's order, which jobs uploading the same file at once all
        settle on) and the later right ones go; ``None`` asks for another upload.
        """
        forge = self.forge
        arrivals = [asset for asset in after.assets if asset.id not in self.seen | self.discarded]
        mine = [asset for asset in arrivals if asset.name == artifact.name]
        if not mine:
            if just_sent:
                self._refuse_renamed(artifact, after, arrivals)
                raise TransientError(f"{forge.title} accepted {artifact.name} but does not list it in release {after.tag}")
            return None
        right = [asset for asset in mine if not problems(forge, artifact, asset, hashes=self.verify)]
        if just_sent:
            judged = mine[-1]  # this upload's copy, the newest
        elif not right and not forge.can_delete_assets:
            judged = mine[0]  # one that landed wrong, which another upload would sit beside
        else:
            judged = None
        found = problems(forge, artifact, judged, hashes=self.verify) if judged is not None else []
        if found and not forge.can_delete_assets:
            # Another upload would sit beside the bad copy: stop and say so.
            raise ForgeError(f"{describe_problems(forge, artifact, found)}; it cannot be removed through the API, so remove it"
                             f" from release {after.tag} in the web interface and run again")
        if found == [GONE] and any(asset.id == judged.id for asset in forge.refresh(self.release).assets):
            # Still listed: it is the forge's download that fails, not another job that removed it.
            raise ForgeError(f"{forge.title} lists {artifact.name} in release {after.tag}, but downloading it to check"
                             " it answers that it does not exist; check the forge's download links (a proxy in front"
                             " of its web side, say), or set verify to false")
        if found:
            self.discarded.add(mine[-1].id)
            forge.delete_assets(after, [mine[-1]])
            raise VerificationError(describe_problems(forge, artifact, found))
        if not right:
            return None
        if right[1:] and forge.can_delete_assets:
            forge.delete_assets(after, right[1:])
        if just_sent and right[0] is not mine[-1]:
            log.info("Another job stored an identical %s first; using that copy.", artifact.name)
        elif not just_sent:
            log.info("%s was stored by an earlier attempt whose answer was lost; not sending it again.", artifact.name)
        return right[0]

    def _refuse_renamed(self, artifact: Artifact, after: Release, arrivals: list[Asset]) -> None:
        """A copy with this file's bytes under another name is this upload, renamed by the forge."""
        renamed = [asset for asset in arrivals if asset.name != artifact.name and same_content(self.forge, artifact, asset)]
        if not renamed:
            return
        names = ", ".join(f"'{asset.name}'" for asset in renamed)
        if self.forge.can_delete_assets:
            self.forge.delete_assets(after, renamed)
            fate = "the copy was removed"
        else:
            fate = f"remove it from release {after.tag} in the web interface"
        raise ForgeError(f"{self.forge.title} stored {artifact.name} under the name {names}; {fate}, and rename the"
                         " file to plain letters, digits and punctuation before publishing it")

    def _settle_copies(self, steps: list[Step], outcomes: list[Outcome], names: set[str]) -> list[Outcome]:
        """Read the release once more and leave one copy of each of ``names``, then remove the older
        copies the uploads replace.

        Of the copies that arrived since the plan, the first in the forge's order stands. A job whose
        copy is not that first one (another job published other bytes under the name at the same
        moment) removes its own and fails in one sentence. The job whose copy stands removes the
        later identical copies (attempts that timed out and stored late, or identical jobs'), and only
        then the older copies, so that no job removes a copy another job still stands on: a job that
        planned after this one's upload finished takes it for an older copy, as a later run would.
        """
        forge = self.forge
        current = forge.refresh(self.release)
        settled, older, conflicts = [], [], []
        extra = [asset for asset in current.assets if asset.id in self.discarded]
        for step, outcome in zip(steps, outcomes):
            artifact = outcome.artifact
            if artifact.name not in names:
                settled.append(outcome)
                continue
            copies = current.assets_named(artifact.name)
            found = {asset.id: [] if asset.id == outcome.asset.id else problems(forge, artifact, asset, hashes=self.verify)
                     for asset in copies if asset.id not in self.seen | self.discarded}
            # A copy removed since the read (a duplicate, by another job) no longer counts.
            arrivals = [asset for asset in copies if asset.id in found and found[asset.id] != [GONE]]
            same = [asset for asset in arrivals if not found[asset.id]]
            if not arrivals:
                raise ForgeError(f"{artifact.name} was stored, but another job removed that copy meanwhile, and"
                                 f" release {self.release.tag} holds no newer one; run again")
            if same and arrivals[0] is same[0]:
                if same[0].id != outcome.asset.id:
                    log.info("Another job stored an identical %s first; using that copy.", artifact.name)
                extra += same[1:]
                present = {asset.id for asset in copies}
                older.append((artifact, [asset for asset in step.stale if asset.id in present]))
                settled.append(Outcome(artifact, same[0], outcome.status))
            else:
                # Its own copies: those with its bytes (one a lost answer left may be one of them).
                extra += same
                conflicts.append(artifact.name)
                settled.append(outcome)
        if extra and not forge.can_delete_assets:
            log.warning("%s holds extra copies of %s from attempts that timed out; remove them in the web interface.",
                        self.release.tag, ", ".join(sorted({asset.name for asset in extra})))
        elif extra:
            forge.delete_assets(current, extra)
            log.info("Removed %d extra copy(ies): stored late by attempts that had timed out, or by another job"
                     " at the same moment.", len(extra))
        for artifact, stale in older:
            self._remove_older(artifact, stale)
        if conflicts:
            raise ForgeError(f"Another job published {', '.join(conflicts)} with other content in release"
                             f" {self.release.tag} at the same moment, and its copy is the one kept; give each"
                             " job's files their own names (a checksums file from one job only)")
        return settled


class _Progress:
    """A log line every few seconds while a file is sent (CI logs are not terminals);
    and the point where an upload stops when the run is stopping."""

    def __init__(self, artifact: Artifact, stop: threading.Event):
        self._artifact = artifact
        self._stop = stop
        self._start = self._last = time.monotonic()
        self._sent = 0

    def __call__(self, sent: int) -> None:
        if self._stop.is_set():
            raise Cancelled(f"Stopped uploading {self._artifact.name}.")
        self._sent = sent
        now = time.monotonic()
        if now - self._last >= PROGRESS_EVERY_SECONDS:
            self._last = now
            size = self._artifact.size or 1
            log.info(
                "  %s: %d%% of %s, %.1f MB/s",
                self._artifact.name, 100 * sent // size, _mib(self._artifact.size), sent / (now - self._start) / 1e6,
            )

    def done(self) -> None:
        seconds = time.monotonic() - self._start
        if seconds >= PROGRESS_EVERY_SECONDS:
            log.info("  %s: sent in %.1f s, %.1f MB/s", self._artifact.name, seconds, self._sent / seconds / 1e6)


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB" if size >= 1 << 20 else f"{size} bytes"
