"""The release attestation: the signed list of every file the release publishes, by name and digest.

An in-toto Statement with the predicate ``https://in-toto.io/attestation/release/v0.1``, as GitHub's
release attestations are: its subjects are the files a downloader should find, and nothing else. A
file added to the release later, or one removed, or one whose bytes changed, disagrees with it; that
is how ``verify`` tells that a release changed after it was published.

It lists the files this run publishes and the program's own files made before it (provenance,
checksums file, signatures), never itself.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from .artifacts import Artifact
from .provenance import STATEMENT_TYPE

PREDICATE_TYPE = "https://in-toto.io/attestation/release/v0.1"
FILE_NAME = "release.intoto.jsonl"


def statement(files: list[Artifact], *, tag: str, repository: str, repository_url: str) -> dict[str, Any]:
    """The statement for a release of ``repository`` (owner/project) at ``tag`` holding ``files``."""
    return {
        "_type": STATEMENT_TYPE,
        "subject": [
            {"name": artifact.name, "digest": {"sha256": artifact.digest()}}
            for artifact in sorted(files, key=lambda artifact: artifact.name)
        ],
        "predicateType": PREDICATE_TYPE,
        "predicate": {"purl": purl(repository, tag), "repository": repository_url, "tag": tag},
    }


def purl(repository: str, tag: str) -> str:
    """The release as a package URL: generic, as these forges have no purl type of their own."""
    owner, _, project = repository.partition("/")
    return f"pkg:generic/{quote(owner, safe='')}/{quote(project, safe='')}@{quote(tag, safe='')}"


def dumps(document: dict[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
