"""Uploads: decide what each file needs, then upload, verify and replace.

A plan is made before anything changes on the forge, so a refused overwrite
fails the run while the release is still untouched.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from .artifacts import Artifact
from .errors import ActionError, Cancelled, ForgeError
from .forges import Asset, Forge, Release
from .retries import RetryPolicy
from .verification import VerificationError, check_stored, same_content

log = logging.getLogger(__name__)

PROGRESS_EVERY_SECONDS = 5.0

UPLOAD, REPLACE, UNCHANGED = "upload", "replace", "unchanged"
STATUS = {UPLOAD: "uploaded", REPLACE: "replaced", UNCHANGED: "unchanged"}


@dataclass
class Step:
    """What one file needs: ``keep`` is the forge's identical copy (if any), ``stale`` the
    same-named copies to remove once the file is safely there."""

    artifact: Artifact
    action: str
    keep: Asset | None = None
    stale: list[Asset] = field(default_factory=list)


@dataclass(frozen=True)
class Outcome:
    artifact: Artifact
    asset: Asset
    status: str


def plan(forge: Forge, release: Release | None, artifacts: list[Artifact], *, overwrite: bool) -> list[Step]:
    steps = []
    for artifact in artifacts:
        existing = release.assets_named(artifact.name) if release else []
        keep = next((asset for asset in existing if same_content(forge, artifact, asset)), None)
        others = [asset for asset in existing if asset is not keep]
        if keep is not None:
            # Extra copies (say, from a run whose answer came too late) go when overwriting is allowed.
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


def describe(step: Step) -> str:
    size = _mib(step.artifact.size)
    stale = f"; then remove {len(step.stale)} older copy(ies)" if step.stale else ""
    return {
        UPLOAD: f"upload {step.artifact.name} ({size})",
        REPLACE: f"replace {step.artifact.name} ({size}{stale})",
        UNCHANGED: f"leave {step.artifact.name} as it is (identical content on the forge{stale})",
    }[step.action]


def carry_out(forge: Forge, release: Release, steps: list[Step], *, verify: bool, policy: RetryPolicy) -> list[Outcome]:
    outcomes: list[Outcome] = []
    retried: set[str] = set()
    for index, step in enumerate(steps):
        try:
            outcomes.append(_carry_out(forge, release, step, verify=verify, policy=policy, retried=retried))
        except Cancelled:
            unfinished = ", ".join(s.artifact.name for s in steps[index:] if s.action != UNCHANGED)
            raise Cancelled(f"Cancelled; these uploads did not finish: {unfinished or 'none'}.") from None
    if retried:
        _remove_late_copies(forge, release, outcomes, retried)
    return outcomes


def _remove_late_copies(forge: Forge, release: Release, outcomes: list[Outcome], names: set[str]) -> None:
    """An attempt that timed out may have stored its copy after a retry already had: remove it.

    Only runs after a retry, so a clean run pays no extra request for it.
    """
    keep = {asset.id for asset in release.assets} | {outcome.asset.id for outcome in outcomes}
    current = forge.refresh(release)
    late = [asset for asset in current.assets if asset.name in names and asset.id not in keep]
    if late and not forge.can_delete_assets:
        log.warning("%s holds extra copies of %s from attempts that timed out; remove them in the web interface.",
                    release.tag, ", ".join(sorted({asset.name for asset in late})))
    elif late:
        forge.delete_assets(current, late)
        log.info("Removed %d copy(ies) stored late by attempts that had timed out.", len(late))


def _carry_out(
    forge: Forge, release: Release, step: Step, *, verify: bool, policy: RetryPolicy, retried: set[str]
) -> Outcome:
    artifact = step.artifact
    if step.keep is not None:
        log.info("%s is already on the forge with the same content; left alone.", artifact.name)
        asset = step.keep
    else:
        log.info("Uploading %s (%s).", artifact.name, _mib(artifact.size))
        asset = upload(forge, release, artifact, verify=verify, policy=policy, retried=retried)
    if step.stale:
        # Only now that a verified copy is in place do the others go.
        forge.delete_assets(release, step.stale)
        log.info("Removed %d older copy(ies) of %s.", len(step.stale), artifact.name)
    return Outcome(artifact, asset, STATUS[step.action])


def upload(
    forge: Forge, release: Release, artifact: Artifact, *, verify: bool, policy: RetryPolicy, retried: set[str]
) -> Asset:
    """Upload one file until one correct copy is stored, and return that copy.

    Before a retry the release is read again: a copy that landed although its
    answer was lost is kept if it is right and removed if it is not. The file's
    name joins ``retried``.
    """
    known = {asset.id for asset in release.assets}

    def attempt() -> Asset:
        progress = _Progress(artifact)
        with artifact.open(progress) as reader:
            asset = forge.upload_asset(release, artifact.name, reader, artifact.size)
        progress.done()
        try:
            check_stored(forge, artifact, asset, hashes=verify)
        except VerificationError as error:
            if not forge.can_delete_assets:
                # Another upload would sit beside the bad copy: stop and say so.
                raise ForgeError(f"{error}; it cannot be removed through the API, so remove it from release"
                                 f" {release.tag} in the web interface and run again") from None
            forge.delete_assets(release, [asset])
            raise
        return asset

    def landed_earlier() -> Asset | None:
        retried.add(artifact.name)
        current = forge.refresh(release)
        arrivals = [asset for asset in current.assets_named(artifact.name) if asset.id not in known]
        good = next((asset for asset in arrivals if same_content(forge, artifact, asset)), None)
        forge.delete_assets(current, [asset for asset in arrivals if asset is not good])
        if good is not None:
            log.info("%s was stored by an earlier attempt whose answer was lost; not sending it again.", artifact.name)
        return good

    return policy.call(attempt, what=f"uploading {artifact.name}", before_retry=landed_earlier)


class _Progress:
    """A log line every few seconds while a file is sent: CI logs are not terminals."""

    def __init__(self, artifact: Artifact):
        self._artifact = artifact
        self._start = self._last = time.monotonic()
        self._sent = 0

    def __call__(self, sent: int) -> None:
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
