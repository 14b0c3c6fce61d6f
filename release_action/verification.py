"""Verification: is what the forge stored, under its name, byte for byte what was sent?"""
from __future__ import annotations

from .artifacts import Artifact
from .errors import TransientError
from .forges import Asset, Forge


class VerificationError(TransientError):
    """The forge stored something other than the local file; another upload may fix it."""


def same_content(forge: Forge, artifact: Artifact, asset: Asset) -> bool:
    """True when ``asset`` already holds this file: same size, then same SHA-256."""
    if asset.size != artifact.size:
        return False
    stored = forge.stored_digests(asset).get("sha256")
    return stored is not None and stored == artifact.ensure_digests().sha256


def problems(forge: Forge, artifact: Artifact, asset: Asset, *, hashes: bool) -> list[str]:
    """How the stored copy differs from the local file: name, size and (with ``hashes``) every
    hash the forge reports; empty when it is the same."""
    found = []
    if asset.name != artifact.name:
        found.append(f"named '{asset.name}'")
    if asset.size != artifact.size:
        found.append(f"{asset.size} bytes instead of {artifact.size}")
    if hashes and not found:
        local = artifact.ensure_digests().as_dict()
        for algorithm, stored in sorted(forge.stored_digests(asset).items()):
            if algorithm in local and stored.lower() != local[algorithm]:
                found.append(f"{algorithm} {stored[:12]}… instead of {local[algorithm][:12]}…")
    return found


def describe_problems(forge: Forge, artifact: Artifact, found: list[str]) -> str:
    return f"{forge.title} stored {artifact.name} wrongly: {'; '.join(found)}"
