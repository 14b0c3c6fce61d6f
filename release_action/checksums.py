"""The checksums file: one ``<hex>  <name>`` line per published file, as ``sha256sum -c`` reads it.

It is written after the uploads, from the digests the run already has: each
file's upload (or its comparison with the forge's copy) read it once, and that
read gave its digest. It is then published and verified like any other file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from .artifacts import Artifact, local_file

ALGORITHMS = ("sha256", "sha512")
#: The file names a checksums file usually has, in the order ``verify`` looks for them.
USUAL_NAMES = ("SHA256SUMS", "SHA512SUMS")
#: A line as ``text`` writes it (``*`` marks binary mode, which sha256sum -b writes, and reads the same).
LINE = re.compile(r"([0-9a-f]{64}|[0-9a-f]{128}) [ *]([^\r\n]+)")
HEX_LENGTH = {64: "sha256", 128: "sha512"}
#: A line is under 400 bytes; a checksums file larger than this lists more files than any release holds.
MAX_BYTES = 16 << 20


@dataclass
class Listing:
    """A checksums file as read back: name -> hex digest, the algorithm, and what is wrong in it."""

    digests: dict[str, str] = field(default_factory=dict)
    algorithm: str | None = None
    problems: list[str] = field(default_factory=list)


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


def parse(data: bytes) -> Listing:
    """Read a checksums file as strictly as it is written: one line per file, each ending in a line feed.
    A line that does not read, a carriage return, a name listed twice or two algorithms in one file is a
    problem: sha256sum would read such a file otherwise than this program, or not at all."""
    listing = Listing()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        listing.problems.append("it is not UTF-8 text")
        return listing
    if text and not text.endswith("\n"):
        listing.problems.append("its last line has no line break")
    for number, line in enumerate(text.split("\n")[:-1] if text.endswith("\n") else text.split("\n"), 1):
        found = LINE.fullmatch(line)
        if found is None:
            why = "ends with a carriage return (CRLF)" if line.endswith("\r") else "is not '<hex>  <name>'"
            listing.problems.append(f"line {number} {why}")
            continue
        hexdigest, name = found.groups()
        algorithm = HEX_LENGTH[len(hexdigest)]
        if listing.algorithm not in (None, algorithm):
            listing.problems.append(f"line {number} is {algorithm}, and an earlier line {listing.algorithm}")
            continue
        listing.algorithm = algorithm
        if name in listing.digests:
            listing.problems.append(f"line {number} lists {name!r} a second time")
            continue
        listing.digests[name] = hexdigest
    return listing
