"""Verification: is what the forge stored, under its name, byte for byte what was sent?

Size, name and one strong hash answer that: equal SHA-256 digests mean equal bytes,
so the other hashes a forge may report add nothing but their cost.
"""

from __future__ import annotations

import logging

from .artifacts import VERIFY_ALGORITHM, Artifact
from .errors import AssetGone, TransientError
from .forges import Asset, Forge

log = logging.getLogger(__name__)

#: Used only when a forge reports no SHA-256: the strongest hash it does report.
FALLBACK_ALGORITHMS = ("sha512", "sha1", "md5")
#: What ``problems`` finds in a copy removed (by another job) between listing it and hashing it.
GONE = "removed from the release meanwhile"


class VerificationError(TransientError):
    """The forge stored something other than the local file; another upload may fix it."""


def stored_hash(forge: Forge, asset: Asset) -> tuple[str, str] | None:
    """(algorithm, hex digest) of the stored bytes to compare: SHA-256 where the forge reports it."""
    reported = forge.stored_digests(asset)
    for algorithm in (VERIFY_ALGORITHM, *FALLBACK_ALGORITHMS):
        if reported.get(algorithm):
            return algorithm, reported[algorithm].lower()
    return None


def same_content(forge: Forge, artifact: Artifact, asset: Asset) -> bool:
    """True when ``asset`` already holds this file: same size, then the same hash."""
    if asset.size != artifact.size:
        return False
    try:
        stored = stored_hash(forge, asset)
    except AssetGone:
        return False
    return stored is not None and stored[1] == artifact.digest(stored[0])


def problems(forge: Forge, artifact: Artifact, asset: Asset, *, hashes: bool) -> list[str]:
    """How the stored copy differs from the local file: name, size and (with ``hashes``) its
    SHA-256; empty when it is the same."""
    found = []
    if asset.name != artifact.name:
        found.append(f"named '{asset.name}'")
    if asset.size < 0:
        found.append(
            f"its size unreadable in {forge.title}'s answer (none, or not a whole number), so it cannot be checked"
        )
    elif asset.size != artifact.size:
        found.append(f"{asset.size} bytes instead of {artifact.size}")
    if hashes and not found:
        try:
            stored = stored_hash(forge, asset)
        except AssetGone:
            return [GONE]
        if stored is None:
            log.warning("%s reports no hash for %s; only its size and name were checked.", forge.title, asset.name)
        elif stored[1] != artifact.digest(stored[0]):
            algorithm, value = stored
            found.append(f"{algorithm} {value[:12]}… instead of {artifact.digest(algorithm)[:12]}…")
    return found


def describe_problems(forge: Forge, artifact: Artifact, found: list[str]) -> str:
    return f"{forge.title} stored {artifact.name} wrongly: {'; '.join(found)}"
