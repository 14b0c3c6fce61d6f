"""verify: the downloader's side. One command checks a release against its publisher's public key.

Where the files come from: a release on a forge (through the same forge modules that publish it,
each file streamed and hashed, never kept whole), or a folder of files already downloaded (no
network). Then what they say: the checksums file's signature, every file against the checksums
file, every signature and signed attestation, and that every file of the release is accounted for.
Each thing wrong is a ``Finding``; the report is one line per finding and a summary, or JSON.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import checksums, envelopes, provenance, release_attestation
from .artifacts import READ_BYTES, Hasher
from .errors import ActionError, ForgeError, InputError
from .log import Progress
from .public_keys import PublicKey

log = logging.getLogger(__name__)

#: verify's exit codes: everything verified; the release does not verify (findings); the command line
#: or the key is wrong; the release could not be read (network, forge, missing release).
VERIFIED, FINDINGS, USAGE, UNREADABLE = 0, 1, 2, 3
#: The attestations this program writes; any other file is not accounted for by being named like one.
ATTESTATIONS = (provenance.FILE_NAME, provenance.SIGNED_FILE_NAME, release_attestation.FILE_NAME)
#: The program's own small files are read whole; one larger than this is not one of them.
MAX_SIGNATURE_BYTES = 64 << 10


class Unreadable(ActionError):
    """The release or folder could not be read: nothing can be said of it."""

    exit_code = UNREADABLE


@dataclass(frozen=True)
class Finding:
    """One thing wrong with the release: ``kind`` for machines, ``message`` one sentence for people."""

    kind: str
    name: str
    message: str


@dataclass(frozen=True)
class Copy:
    """One file of the release as its source lists it; ``handle`` is the source's own (an Asset, a Path)."""

    name: str
    size: int
    handle: Any


@dataclass
class Read:
    """What one read of a file gave: its digests, its bytes when it is small and ours, its path on disk."""

    digests: dict[str, str]
    data: bytes | None = None
    path: Path | None = None


@dataclass(frozen=True)
class Report:
    where: str
    tag: str | None
    key_id: str
    files: list[str]
    findings: list[Finding] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return not self.findings

    def lines(self) -> list[str]:
        lines = [shown(f"FAIL {finding.name}: {finding.message}") for finding in self.findings]
        state = "verified" if self.verified else f"NOT verified: {len(self.findings)} finding(s)"
        release = f"release {self.tag}" if self.tag else "the release"
        lines.append(f"{release} ({self.where}), {len(self.files)} file(s), key {self.key_id}: {state}.")
        return lines

    def json(self) -> str:
        document = {
            "verified": self.verified,
            "where": self.where,
            "tag": self.tag,
            "key_id": self.key_id,
            "files": self.files,
            "findings": [asdict(finding) for finding in self.findings],
        }
        return json.dumps(document, indent=2, ensure_ascii=False)


def shown(name: str) -> str:
    """A name as a line may show it: a control character or a lone surrogate is escaped, never written."""
    return "".join(c if c.isprintable() and not 0xD800 <= ord(c) <= 0xDFFF else f"\\x{ord(c):02x}" for c in name)


# -- where the files come from ----------------------------------------------------------------------


class Folder:
    """Files already downloaded: the regular files directly in ``path``. A link or anything else that is
    not a plain file is a finding and is never read: a link may lead anywhere."""

    def __init__(self, path: Path):
        if not path.is_dir():
            raise InputError(f"--dir names {path}, which is not a folder.")
        self.path = path
        self.where = f"folder {path}"

    def copies(self) -> tuple[list[Copy], list[Finding]]:
        copies, findings = [], []
        try:
            entries = sorted(os.scandir(self.path), key=lambda entry: entry.name)
        except OSError as error:
            raise Unreadable(f"The folder {self.path} cannot be read: {error.strerror}.") from None
        for entry in entries:
            if entry.is_symlink():
                findings.append(
                    Finding("extra", entry.name, "is a symbolic link, not a downloaded file; it is not followed")
                )
            elif not entry.is_file(follow_symlinks=False):
                findings.append(Finding("extra", entry.name, "is not a regular file of the release"))
            else:
                copies.append(Copy(entry.name, entry.stat(follow_symlinks=False).st_size, self.path / entry.name))
        return copies, findings

    def read(self, copy: Copy, algorithms: set[str], keep_bytes: int, spool: Path | None) -> Read:
        try:  # O_NOFOLLOW: a file swapped for a link since it was listed is not followed either
            handle = os.open(copy.handle, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        except OSError as error:
            raise Unreadable(f"{copy.handle} cannot be read: {error.strerror}.") from None
        with open(handle, "rb", buffering=0) as stream:
            if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
                raise Unreadable(f"{copy.handle} is no longer a regular file.")
            read = _consume(iter(lambda: stream.read(READ_BYTES), b""), algorithms, keep_bytes, None)
        read.path = copy.handle
        return read


class OnForge:
    """A release on a forge, read through the forge module that publishes there."""

    def __init__(self, forge: Any, tag: str, policy: Any):
        self.forge, self.tag, self.policy = forge, tag, policy
        release = _unreadable(lambda: forge.find_release(tag))
        if release is None:
            raise Unreadable(f"{forge.title} has no release for tag '{tag}' in {forge.repository}.")
        self.release = release
        state = " (a draft)" if release.draft else ""
        self.where = f"{forge.repository} on {forge.title}{state}"

    def copies(self) -> tuple[list[Copy], list[Finding]]:
        return [Copy(asset.name, asset.size, asset) for asset in self.release.assets], []

    def read(self, copy: Copy, algorithms: set[str], keep_bytes: int, spool: Path | None) -> Read:
        def attempt() -> Read:
            progress = Progress(copy.name, copy.size, "downloaded")  # the lines an upload prints
            return _consume(
                self.forge.download(copy.handle), algorithms, keep_bytes, spool, progress, limit=max(copy.size, 0) + 1
            )

        return _unreadable(lambda: self.policy.call(attempt, what=f"downloading {copy.name}"))


def _unreadable(work: Callable[[], Any]) -> Any:
    try:
        return work()
    except ForgeError as error:
        raise Unreadable(str(error)) from None


def _consume(
    pieces: Iterator[bytes],
    algorithms: set[str],
    keep_bytes: int,
    spool: Path | None,
    progress: Progress | None = None,
    limit: int | None = None,
) -> Read:
    """Hash a stream once; keep its bytes when they fit in ``keep_bytes``, and write it to ``spool`` if given.
    Past ``limit`` bytes (one more than the forge lists) it stops: that byte already tells the copy is
    wrong, and a link that never ends cannot keep the run or fill the disk."""
    hasher, kept, size = Hasher(algorithms), bytearray(), 0
    out = open(spool, "wb") if spool is not None else None
    try:
        for piece in pieces:
            if limit is not None:
                piece = piece[: limit - size]
            hasher.update(piece)
            size += len(piece)
            if size <= keep_bytes:
                kept += piece
            if out is not None:
                out.write(piece)
            if progress is not None:
                progress.advance(size)
            if limit is not None and size >= limit:
                break
    finally:
        if out is not None:
            out.close()
    if progress is not None:
        progress.done()
    return Read(hasher.hexdigests(), bytes(kept) if size <= keep_bytes else None, spool)


# -- what they say ---------------------------------------------------------------------------------


def check(source: Folder | OnForge, key: PublicKey, *, tag: str | None, checksums_name: str | None) -> Report:
    copies, findings = source.copies()
    first: dict[str, Copy] = {}
    for copy in copies:
        if copy.name in first:
            findings.append(
                Finding("duplicate", copy.name, "is a second copy under one name; a downloader may get either")
            )
        else:
            first[copy.name] = copy
    sums = checksums_name or next((name for name in checksums.USUAL_NAMES if name in first), None)
    with tempfile.TemporaryDirectory(prefix="release-action-verify-") as folder:
        checker = _Checker(source, key, first, Path(folder), tag)
        checker.run(sums)
    return Report(source.where, checker.tag, key.key_id, sorted(first), findings + checker.findings)


class _Checker:
    def __init__(self, source: Folder | OnForge, key: PublicKey, files: dict[str, Copy], spool: Path, tag: str | None):
        self.source, self.key, self.files, self.spool, self.tag = source, key, files, spool, tag
        self.findings: list[Finding] = []
        self.reads: dict[str, Read] = {}
        #: How much of each file is kept in memory (the program's own small files), and which files are
        #: also kept on disk, for a signature of its own to be checked (a folder's are on disk already).
        self.small: dict[str, int] = {}
        self.on_disk: set[str] = set()

    def find(self, kind: str, name: str, message: str) -> None:
        self.findings.append(Finding(kind, name, message))

    def read(self, name: str) -> Read:
        """The one read of a file, with every digest a checksums file or a statement may give for it."""
        if name not in self.reads:
            spool = self.spool / str(len(self.reads)) if name in self.on_disk else None
            self.reads[name] = self.source.read(
                self.files[name], set(checksums.ALGORITHMS), self.small.get(name, 0), spool
            )
        return self.reads[name]

    def run(self, sums: str | None) -> None:
        signatures = {
            name
            for name in self.files
            if name.endswith(self.key.suffix) and name[: -len(self.key.suffix)] in self.files
        }
        attestations = sorted(name for name in self.files if name in ATTESTATIONS)
        signed = {name[: -len(self.key.suffix)] for name in signatures}
        self.small = {
            **{name: envelopes.MAX_BYTES for name in attestations},
            **{name: MAX_SIGNATURE_BYTES for name in signatures},
        }
        if sums:
            self.small[sums] = checksums.MAX_BYTES
        self.on_disk = signed if not isinstance(self.source, Folder) else set()
        # The release attestation first: signed, it says which release the others must speak of.
        signed_statements = sorted(
            (name for name in attestations if name != provenance.FILE_NAME),
            key=lambda name: name != release_attestation.FILE_NAME,
        )
        statements = {name: self._envelope(name) for name in signed_statements}
        if release_attestation.FILE_NAME not in self.files:
            self.find(
                "missing",
                release_attestation.FILE_NAME,
                "is not in the release: nothing signed says which files it was published with",
            )
        listing = self._checksums(sums)
        algorithm = listing.algorithm or "sha256"
        for name in sorted(self.files):  # every file read once, hashed as the checksums file and the statements need
            self.read(name)
            if name in signed and name != sums:  # its own signature, checked while the copy kept for it is here
                self._signature(self.key.signature_name(name))
                self._forget(name, checked=True)
        for name, hexdigest in listing.digests.items():
            if name not in self.files:
                self.find("missing", name, f"is listed in {sums}, and not in the release")
            elif self.reads[name].digests.get(algorithm) != hexdigest:
                self.find(
                    "changed",
                    name,
                    f"its {algorithm.upper()} is not the one {sums} lists: it changed after it was signed",
                )
        own = {sums, *signatures, *attestations} if sums else {*signatures, *attestations}
        for name in sorted(set(self.files) - set(listing.digests) - own):
            self.find(
                "extra",
                name,
                f"is not listed in {sums or 'a checksums file'}, nor a signature or attestation of this release",
            )
        for name, statement in statements.items():
            if statement is not None:
                self._subjects(name, statement)

    def _forget(self, name: str, *, checked: bool = False) -> None:
        """Let go of what was kept of a file once it is checked: a release of thousands of files is read
        with the memory and disk of one. A copy kept on disk for the file's own signature stays until
        that is ``checked``."""
        if name in self.on_disk and not checked:
            return
        read = self.reads[name]
        kept = read.path
        if kept is not None and kept.parent == self.spool:  # our own copy, not the user's file
            kept.unlink(missing_ok=True)
            kept = None
        self.reads[name] = Read(read.digests, path=kept)

    def _checksums(self, sums: str | None) -> checksums.Listing:
        if sums is None or sums not in self.files:
            self.find(
                "missing",
                sums or checksums.USUAL_NAMES[0],
                "no checksums file is in the release (give --checksums NAME if it has another name)",
            )
            return checksums.Listing()
        self._signature(self.key.signature_name(sums))
        read = self.read(sums)
        if read.data is None:
            self.find(
                "checksums",
                sums,
                f"is larger than {checksums.MAX_BYTES >> 20} MiB, which no checksums file of this program is",
            )
            return checksums.Listing()
        listing = checksums.parse(read.data)
        for problem in listing.problems:
            self.find("checksums", sums, f"{problem}; sha256sum -c would not read it as written")
        return listing

    def _signature(self, name: str) -> None:
        signed = name[: -len(self.key.suffix)]
        if name not in self.files:
            self.find("signature", name, f"is missing: nothing signs {signed} with the key {self.key.key_id}")
            return
        signature = self.read(name).data
        target = self.read(signed)
        if (
            signature is None
            or target.path is None
            or not self.key.verifies_file(target.path, signature, name=signed, tag=self.tag)
        ):
            self.find(
                "signature",
                name,
                f"is not a signature of {signed} by the {self.key.format} key"
                f" {self.key.key_id}" + ("" if self.tag is None else f" for {self.tag}"),
            )
        self._forget(name)

    def _envelope(self, name: str) -> dict | None:
        """The statement an attestation file carries, once its envelope and signature check out."""
        data = self.read(name).data
        self._forget(name)
        try:
            if data is None:
                raise envelopes.EnvelopeError(f"it is larger than {envelopes.MAX_BYTES >> 20} MiB")
            envelope = envelopes.loads(data)
        except envelopes.EnvelopeError as error:
            self.find("attestation", name, f"is not a signed attestation: {error}")
            return None
        if envelope.payload_type != envelopes.PAYLOAD_TYPE or not self.key.verifies_bytes(
            envelope.signed_bytes, envelope.signature
        ):
            self.find("attestation", name, f"is not signed by the {self.key.format} key {self.key.key_id}")
            return None
        try:
            statement = json.loads(envelope.payload)
            subjects = {subject["name"]: subject["digest"]["sha256"] for subject in statement["subject"]}
            names = [subject["name"] for subject in statement["subject"]]
            kind = statement["predicateType"]
            claimed = (
                statement["predicate"]["tag"]
                if kind == release_attestation.PREDICATE_TYPE
                else statement["predicate"]["buildDefinition"]["externalParameters"]["tag"]
            )
        except (ValueError, KeyError, TypeError):
            self.find("attestation", name, "is signed, but its statement is not one this program writes")
            return None
        if len(names) != len(subjects):
            self.find("attestation", name, "lists a file twice")
        if self.tag is None and kind == release_attestation.PREDICATE_TYPE:
            self.tag = claimed  # signed: the release it speaks of, for the checks that name the tag
        if claimed != self.tag:
            self.find("attestation", name, f"is the attestation of release {shown(str(claimed))}, not of {self.tag}")
        return {"kind": kind, "subjects": subjects}

    def _subjects(self, name: str, statement: dict) -> None:
        subjects: dict[str, str] = statement["subjects"]
        whole = statement["kind"] == release_attestation.PREDICATE_TYPE
        for subject, digest in subjects.items():
            if subject not in self.files:
                why = "removed after the release was published" if whole else "not in the release"
                self.find("removed" if whole else "missing", subject, f"is listed in {name}, and {why}")
            elif self.reads[subject].digests["sha256"] != digest:
                self.find(
                    "changed", subject, f"its SHA-256 is not the one {name} lists: it changed after it was attested"
                )
        if whole:
            for added in sorted(set(self.files) - set(subjects) - {name}):
                self.find("added", added, f"is not listed in {name}: it was added after the release was published")
        elif statement["kind"] != provenance.PREDICATE_TYPE:
            self.find("attestation", name, f"states {shown(str(statement['kind']))}, which this program never signs")


# -- the command ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    """What ``release-action verify`` is asked: a folder, or a forge's release; and the publisher's key."""

    key: str
    key_id: str | None
    tag: str | None
    checksums: str | None
    folder: Path | None
    forge: str | None
    api_url: str | None
    repository: str | None
    token: str = field(repr=False, default="")
    ca_bundle: str | None = None
    timeout_seconds: float = 120.0
    as_json: bool = False


def verify(options: Options) -> Report:
    from . import public_keys

    key = public_keys.read(options.key, options.key_id)
    if options.folder is not None:
        return check(Folder(options.folder), key, tag=options.tag, checksums_name=options.checksums)
    return check(_release_on_forge(options), key, tag=options.tag, checksums_name=options.checksums)


def _release_on_forge(options: Options) -> OnForge:
    from . import forges
    from .retries import RetryPolicy

    if not (options.forge and options.repository and options.tag and options.api_url):
        raise InputError(
            "verify needs --dir, or --forge, --repository and --tag (and --api-url where the forge has"
            " no public server); see release-action verify --help."
        )
    forge_class = forges.forge_class(options.forge.strip().lower())
    policy = RetryPolicy(attempts=5, max_seconds=300, first_wait_seconds=1)
    forge = forges.connect(
        forge_class.name,
        api_url=options.api_url,
        token=options.token,
        repository=options.repository,
        policy=policy,
        timeout=options.timeout_seconds,
        ca_bundle=options.ca_bundle,
    )
    if not options.token:  # a public project: no credential goes anywhere
        forge.http.declare([])
    log.info("Reading release %s of %s on %s (%s).", options.tag, options.repository, forge.title, options.api_url)
    return OnForge(forge, options.tag, policy)
