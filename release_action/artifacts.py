"""The local build artifacts: which files the patterns name, and their hashes.

A file is read once per upload: the same read feeds the request body and its
SHA-256, so verifying costs no second pass over a large file. Other
algorithms are computed only when something asks for them.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ActionError, InputError

#: Characters that make a pattern a glob (with GLOBSTAR and BRACE); a pattern without them names one path.
GLOB_CHARACTERS = frozenset("*?[]{}\\")
#: What verification compares: equal SHA-256 digests already mean identical bytes.
VERIFY_ALGORITHM = "sha256"
#: A file goes out in pieces of this size. With two buffers (BUFFERS), 1 MiB pieces took the same time
#: as 2 MiB ones on a 1 GiB upload, for about 5% more CPU, and keep an upload's buffers at 2 MiB: six
#: uploads at once (the default parallel) stay under 64 MB.
READ_BYTES = 1 << 20
#: Buffers a file's reader takes turns in: one being hashed while the next is read and sent.
BUFFERS = 2


def digests_of(pieces: Iterable[bytes], algorithms: Iterable[str] = (VERIFY_ALGORITHM,)) -> dict[str, str]:
    """Hex digests of a stream of pieces (a download, say), in one pass."""
    hasher = Hasher(algorithms)
    for piece in pieces:
        hasher.update(piece)
    return hasher.hexdigests()


class Hasher:
    """Several hashes fed together."""

    def __init__(self, algorithms: Iterable[str]):
        self._hashes = {algorithm: hashlib.new(algorithm) for algorithm in sorted(set(algorithms))}

    def update(self, data: bytes | memoryview) -> None:
        for hash_ in self._hashes.values():
            hash_.update(data)

    def hexdigests(self) -> dict[str, str]:
        return {algorithm: hash_.hexdigest() for algorithm, hash_ in self._hashes.items()}


class FileChangedError(ActionError):
    """A local file changed (or vanished) after the run looked at it: whatever was sent is not it."""


@dataclass
class Artifact:
    """A local file to publish under ``name``, as it was when the run looked at it.

    ``digests`` is filled by the first full read, with every algorithm in ``algorithms``:
    SHA-256, which verification compares, and any other that is asked for before the read.
    """

    path: Path
    name: str
    size: int
    #: What the file was when the run looked at it: see ``stamp``.
    seen: tuple[int, ...]
    algorithms: frozenset[str] = frozenset({VERIFY_ALGORITHM})
    digests: dict[str, str] = field(default_factory=dict)

    def digest(self, algorithm: str = VERIFY_ALGORITHM) -> str:
        """The file's hex digest; read from disk only if no read computed it yet."""
        if algorithm not in self.digests:
            self.algorithms |= {algorithm}
            with self.open() as reader:
                while reader.read(READ_BYTES):
                    pass
        return self.digests[algorithm]

    def check_unchanged(self) -> None:
        """Raise FileChangedError unless the file on disk is still the one that was read."""
        try:
            now = os.stat(self.path)
        except OSError as error:
            raise FileChangedError(
                f"{self.path} could not be read again after it was uploaded: {error.strerror}."
            ) from None
        self._compare(now)

    def _compare(self, now: os.stat_result) -> None:
        if stamp(now) != self.seen:
            raise self._changed(
                f" ({self.size} bytes when the run started, {now.st_size} now)" if now.st_size != self.size else ""
            )

    def _changed(self, sizes: str = "") -> FileChangedError:
        return FileChangedError(
            f"{self.path} changed while it was being published{sizes}; publish it once whatever writes it has finished."
        )

    def _learn(self, digests: dict[str, str]) -> None:
        """Keep what a full read computed; a digest unlike an earlier read's means the file changed."""
        if any(self.digests.get(algorithm, value) != value for algorithm, value in digests.items()):
            raise self._changed()
        self.digests.update(digests)

    def open(self, on_progress: Callable[[int], None] | None = None) -> HashingReader:
        try:
            handle = open(self.path, "rb", buffering=0)
        except OSError as error:
            raise FileChangedError(f"Cannot read {self.path} any more: {error.strerror}.") from None
        return HashingReader(self, handle, on_progress)


class HashingReader:
    """Reads a file for an upload, hashing what passes through.

    Exactly the size seen when the run looked at the file is read; when the read
    reaches that end, the file is checked to be still that file (a growing log, a
    build still writing), so a cut or mixed copy fails the upload before its last
    bytes go out. Then the artifact learns its digests.

    Each piece is hashed on a thread of its own while the caller sends it: hashlib
    and the socket both release the GIL, so hashing runs beside the send instead of
    before it. Pieces take turns in ``BUFFERS`` reused buffers, so the next piece is
    read (and sent) while the last one is still being hashed: the hashing thread,
    the slower of the two on a core of its own, never waits for a read. A piece is
    valid until the read after next, and a buffer is read into again only once its
    piece is hashed: the bytes hashed are the bytes sent.
    """

    def __init__(self, artifact: Artifact, handle, on_progress: Callable[[int], None] | None):
        self._artifact = artifact
        self._handle = handle
        self._hasher = Hasher(artifact.algorithms)
        self._on_progress = on_progress
        # A file of one piece needs one buffer; a larger one gets its second with its second piece.
        self._piece_bytes = min(READ_BYTES, max(artifact.size, 1))
        self._buffers: list[memoryview] = []
        self._hashing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hash")
        #: The hash of the piece last read into each buffer, by the buffer's index.
        self._pending: list[Future | None] = [None] * BUFFERS
        self._turn = 0
        self._finished = False
        self.position = 0

    @property
    def len(self) -> int:
        return max(0, self._artifact.size - self.position)

    def read(self, size: int = -1) -> memoryview:
        if size is None or size < 0:
            size = self.len
        turn = self._turn
        self._wait_for_hash(turn)
        if turn == len(self._buffers):
            self._buffers.append(memoryview(bytearray(self._piece_bytes)))
        view = self._buffers[turn][: min(size, self.len, self._piece_bytes)]
        count = self._handle.readinto(view) if view else 0
        if not count and self.len:
            self._artifact._compare(os.fstat(self._handle.fileno()))
        piece = view[:count]
        self.position += count
        if count:
            self._pending[turn] = self._hashing.submit(self._hasher.update, piece)
            self._turn = (turn + 1) % BUFFERS
        if self._on_progress is not None:
            self._on_progress(self.position)
        if self.len == 0 and not self._finished:
            self._finish()
        return piece

    def _wait_for_hash(self, turn: int) -> None:
        pending = self._pending[turn]
        if pending is not None:
            pending.result()
            self._pending[turn] = None

    def _finish(self) -> None:
        self._finished = True
        for turn in range(BUFFERS):
            self._wait_for_hash(turn)
        self._artifact._compare(os.fstat(self._handle.fileno()))
        self._artifact._learn(self._hasher.hexdigests())

    def close(self) -> None:
        self._hashing.shutdown(wait=True)
        self._handle.close()

    def __enter__(self) -> HashingReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def split_patterns(text: str) -> list[str]:
    """Patterns from an input: one per line or comma-separated; blanks ignored.

    A comma inside braces (``*.{zip,tar.gz}``) or brackets (``[,]``) belongs to its
    pattern, and ``\\,`` is a comma in a file name: the glob reads it as a literal comma.
    """
    return [part.strip() for line in text.splitlines() for part in _split_line(line) if part.strip()]


def _split_line(line: str) -> list[str]:
    parts, start, depth, bracket, escaped = [], 0, 0, False, False
    for index, char in enumerate(line):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif bracket:
            bracket = char != "]"
        elif char == "[":
            bracket = True
        elif char == "{":
            depth += 1
        elif char == "}" and depth:
            depth -= 1
        elif char == "," and not depth:
            parts.append(line[start:index])
            start = index + 1
    return parts + [line[start:]]


def expand(
    patterns: Iterable[str], working_directory: Path, *, fail_on_unmatched: bool
) -> tuple[list[Artifact], list[str]]:
    """The files the patterns select, in pattern order, and the patterns that matched none.

    A pattern starting with ``!`` removes what it matches from the whole result. A file that a
    renaming pattern (``path#name``) selects is published under the new name only, even when a
    plain pattern selects it too.
    """
    patterns = list(patterns)
    includes = [p for p in patterns if not p.startswith("!")]
    excludes = [p[1:] for p in patterns if p.startswith("!")]
    if excludes and not includes:
        raise InputError("Input 'files' has only exclusions ('!' patterns); add a pattern that selects files.")
    for pattern in excludes:
        if split_rename(pattern)[1] is not None:
            raise InputError(
                f"Pattern '!{pattern}' in input 'files' excludes files, so it cannot rename them with '#';"
                " write a '#' in a path as '\\#'."
            )
    selected: dict[tuple[Path, str], None] = {}
    renames: set[tuple[Path, str]] = set()
    unmatched = []
    for pattern in includes:
        wanted, rename = split_rename(pattern)
        kept = _matches(pattern, wanted, working_directory, excludes)
        if not kept:
            unmatched.append(pattern)
        elif rename is not None:
            if len(kept) > 1:
                raise InputError(
                    f"Pattern '{pattern}' in input 'files' renames a file, so it must match exactly one, but it"
                    f" matches {len(kept)} ({_some(kept)}); narrow the part before '#'."
                )
            renames.add((kept[0], rename))
        selected.update(dict.fromkeys((path, rename or path.name) for path in kept))
    if unmatched and fail_on_unmatched:
        quoted = ", ".join(f"'{p}'" for p in unmatched)
        raise InputError(
            f"Pattern {quoted} in input 'files' matched no file in {working_directory}"
            " (set fail_on_unmatched_files to false to allow this)."
        )
    renamed = {path for path, _ in renames}
    chosen = [entry for entry in selected if entry[0] not in renamed or entry in renames]
    return [local_file(path, name) for path, name in chosen], unmatched


def split_rename(pattern: str) -> tuple[str, str | None]:
    """``path#asset-name``: the glob, and the name to publish under (None keeps the file's own).

    The first ``#`` not written ``\\#`` separates them; the glob reads ``\\#`` as a literal ``#``.
    """
    escaped = False
    for index, char in enumerate(pattern):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "#":
            # In the name as in the path, a backslash makes the next character literal: \\# and \\, (the
            # comma the patterns are split at) are a '#' and a ','.
            wanted, name = pattern[:index].strip(), re.sub(r"\\(.)", r"\1", pattern[index + 1 :]).strip()
            if not wanted or not name or "/" in name or name in (".", ".."):
                raise InputError(
                    f"Pattern '{pattern}' in input 'files' must read path#name, the name a plain file name without"
                    " '/' and not '.' or '..'; write a '#' in a path as '\\#'."
                )
            return wanted, name
    return pattern, None


def _glob_flags() -> int:
    """wcmatch's flags, imported only by a run whose patterns are globs. No FOLLOW: like bash's globstar,
    ``**`` does not descend into symlinked directories, so a link back up the tree (``self -> .``) cannot
    make the search endless."""
    from wcmatch import glob

    return glob.GLOBSTAR | glob.BRACE


def _matches(pattern: str, wanted: str, root: Path, excludes: list[str]) -> list[Path]:
    if GLOB_CHARACTERS.isdisjoint(wanted):  # one path, found as the glob would find it
        matched = [wanted] if wanted and os.path.lexists(os.path.join(root, wanted)) else []
    else:
        from wcmatch import glob

        matched = glob.glob(wanted, root_dir=root, flags=_glob_flags())
    paths = [root / m for m in sorted(matched)]
    files = [p for p in paths if not p.is_dir()]
    if paths and not files:
        raise InputError(
            f"Pattern '{pattern}' in input 'files' matches only directories; name the files inside them"
            f" (for example '{wanted.rstrip('/')}/*')."
        )
    return [p for p in files if not _excluded(p, root, excludes)]


def _some(paths: list[Path], shown: int = 3) -> str:
    names = ", ".join(str(path) for path in paths[:shown])
    return names + (", …" if len(paths) > shown else "")


def _excluded(path: Path, root: Path, excludes: list[str]) -> bool:
    """An exclusion names a file as an inclusion may: relative to the working directory (with or
    without ``./``), or by its absolute path."""
    if not excludes:
        return False
    relative, absolute = os.path.relpath(path, root), os.path.abspath(path)
    patterns = [_without_dot_slash(pattern) for pattern in excludes]
    from wcmatch import glob

    return any(glob.globmatch(spelling, patterns, flags=_glob_flags()) for spelling in (relative, absolute))


def _without_dot_slash(pattern: str) -> str:
    while pattern.startswith("./"):
        pattern = pattern[2:].lstrip("/")
    return pattern


def local_file(path: Path, name: str) -> Artifact:
    """The file at ``path``, to be published as ``name``; InputError when it cannot be read."""
    if path.exists() and not path.is_file():
        raise InputError(f"Cannot read {path}: it is not a regular file.")
    try:
        with open(path, "rb") as handle:
            stat = os.fstat(handle.fileno())
    except OSError as error:
        raise InputError(f"Cannot read {path}: {error.strerror}.") from None
    return Artifact(path=path, name=name, size=stat.st_size, seen=stamp(stat))


def stamp(stat: os.stat_result) -> tuple[int, ...]:
    """What changes whenever a file's bytes do. A writer can set the mtime back (reproducible builds do,
    to SOURCE_DATE_EPOCH) but not the ctime, which any write or utime moves; a file replaced by
    another (rename, copy) has another inode or device."""
    return stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino, stat.st_dev


def check_names(artifacts: list[Artifact]) -> None:
    """Asset names are base names, so two files with one name cannot both be published."""
    seen: dict[str, Path] = {}
    for artifact in artifacts:
        if artifact.name in seen:
            raise InputError(
                f"Two files would be published as '{artifact.name}': {seen[artifact.name]} and {artifact.path};"
                " rename one or narrow the patterns in input 'files'."
            )
        seen[artifact.name] = artifact.path
