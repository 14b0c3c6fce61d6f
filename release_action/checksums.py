"""The checksums file: one ``<hex>  <name>`` line per published file, as ``sha256sum -c`` reads it.

It is written after the uploads, from the digests the run already has: each
file's upload (or its comparison with the forge's copy) read it once, and that
read gave its digest. It is then published and verified like any other file.
"""
from __future__ import annotations

from pathlib import Path

from .artifacts import Artifact, local_file

ALGORITHMS = ("sha256", "sha512")


def ask(artifacts: list[Artifact], algorithm: str) -> None:
    """Before any file is read: have the one read of each file compute ``algorithm`` too."""
    for artifact in artifacts:
        artifact.algorithms |= {algorithm}


def text(published: list[Artifact], algorithm: str) -> str:
    """Sorted by name, with a final newline. Names never need sha256sum's escaping: a name with a
    backslash or a line break is refused before any request."""
    lines = sorted((artifact.name, artifact.digest(algorithm)) for artifact in published)
    return "".join(f"{hexdigest}  {name}\n" for name, hexdigest in lines)


def write(published: list[Artifact], name: str, algorithm: str, folder: Path) -> Artifact:
    """The checksums file for ``published``, written in ``folder``, as a file to publish."""
    path = folder / name
    path.write_text(text(published, algorithm), encoding="utf-8")
    return local_file(path, name)
