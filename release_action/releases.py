"""Releases: the one release for a tag, created or brought up to date."""

from __future__ import annotations

import logging

from .errors import ForgeError
from .forges import Forge, Release, ReleaseSpec
from .retries import RetryPolicy

log = logging.getLogger(__name__)

#: Answers to a create that mean "not like this": a missing tag, or a release that now exists.
REFUSALS = frozenset({400, 404, 409, 422})


def ensure(forge: Forge, found: Release | None, spec: ReleaseSpec, policy: RetryPolicy) -> Release:
    if found is not None:
        return _update(forge, found, spec)
    log.info("Creating release %s.", spec.tag)
    try:
        created = policy.call(
            lambda: forge.create_release(spec.against(None)),
            what=f"creating release {spec.tag}",
            # An earlier attempt may have landed although its answer was lost.
            before_retry=lambda: forge.find_release(spec.tag),
        )
    except ForgeError as error:
        if error.status not in REFUSALS:
            raise
        # Another job may have created it meanwhile; otherwise the tag is missing.
        existing = forge.find_release(spec.tag)
        if existing is not None:
            log.info("Release %s was created by another job meanwhile; using it.", spec.tag)
            return _update(forge, existing, spec)
        raise ForgeError(forge.explain_refused_create(spec, error), error.status) from None
    return _settle(forge, created, spec)


def _settle(forge: Forge, created: Release, spec: ReleaseSpec) -> Release:
    """Look again after creating: where parallel jobs each made a release for the tag (a forge
    may allow it), all of them settle on the oldest, and each removes its own extra, still empty."""
    if forge.one_release_per_tag:
        return created
    oldest = forge.find_release(spec.tag)
    if oldest is None or oldest.id == created.id:
        return created
    log.info("Another job created release %s first; using that one and removing the copy made here.", spec.tag)
    forge.delete_release(created)
    return _update(forge, oldest, spec)


def _update(forge: Forge, release: Release, spec: ReleaseSpec) -> Release:
    spec = spec.against(release)
    changes = spec.differences(release)
    if not changes:
        log.info("Release %s exists and is up to date.", release.tag)
        return release
    log.info("Updating release %s: %s.", release.tag, ", ".join(changes))
    return forge.update_release(release, spec)


def finish(forge: Forge, release: Release, spec: ReleaseSpec, policy: RetryPolicy) -> Release:
    """Publish a draft once its files are in place, unless the user wants it left a draft."""
    if not release.draft or spec.draft:
        if release.draft:
            log.info("Release %s is left a draft, as asked.", release.tag)
        return release
    log.info("Publishing release %s.", release.tag)

    def published_earlier() -> Release | None:
        current = forge.refresh(release)
        return None if current.draft else current

    try:
        return policy.call(
            lambda: forge.publish_release(release),
            what=f"publishing release {release.tag}",
            before_retry=published_earlier,
        )
    except ForgeError as error:
        # Parallel jobs share the draft; the first to finish publishes it, and the others are refused.
        if error.status is None or not 400 <= error.status < 500:
            raise
        current = published_earlier()
        if current is None:
            raise
        log.info("Release %s was published by another job meanwhile.", release.tag)
        return current


def describe_finish(forge: Forge, found: Release | None, spec: ReleaseSpec) -> list[str]:
    draft = found.draft if found is not None else forge.creates_drafts
    return [f"publish release {spec.tag}"] if draft and not spec.draft else []


def describe(found: Release | None, spec: ReleaseSpec) -> str:
    if found is None:
        return f"create release {spec.tag} titled '{spec.title or spec.tag}'"
    changes = spec.against(found).differences(found)
    return f"update release {spec.tag}: {', '.join(changes)}" if changes else f"leave release {spec.tag} as it is"
