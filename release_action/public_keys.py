"""Public keys: what checks a signature of the release, for the run that signs it and for a downloader.

The signing run checks each signature it makes or keeps with the public half of its own key; the
``verify`` command checks the same signatures with the public key the publisher gave out. Both go
through the classes here, so the two cannot disagree on what a good signature is.
"""

from __future__ import annotations

import abc
import base64
import contextlib
import os
import shutil
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from . import minisign
from .artifacts import READ_BYTES
from .errors import InputError

#: A public key file is a few kilobytes; a larger one is not a key.
MAX_KEY_BYTES = 1 << 20


class PublicKey(abc.ABC):
    format: ClassVar[str]
    #: Appended to a signed file's name to name its signature.
    suffix: ClassVar[str]
    #: The OpenPGP fingerprint, or the minisign key id, as the verifying programs print them.
    key_id: str

    @abc.abstractmethod
    def verifies_file(self, path: Path, signature: bytes, *, name: str, tag: str | None) -> bool:
        """True when ``signature`` (a detached signature file) is this key's over the file at ``path``,
        made for ``name`` in ``tag`` (any tag where ``tag`` is None) where the format says so."""

    @abc.abstractmethod
    def verifies_bytes(self, data: bytes, signature: bytes) -> bool:
        """True when ``signature`` is this key's over ``data``: the raw signature a DSSE envelope holds."""

    def signature_name(self, name: str) -> str:
        return name + self.suffix


class OpenPgpKey(PublicKey):
    format = "openpgp"
    suffix = ".asc"

    def __init__(self, certificate: object):
        self._certificate = certificate
        self._pysequoia = pysequoia()
        self.key_id = certificate.fingerprint.upper()  # type: ignore[attr-defined]

    def verifies_file(self, path: Path, signature: bytes, *, name: str, tag: str | None) -> bool:
        try:
            sig = self._pysequoia.Sig.from_bytes(signature)
            # Exactly one signature, armored as this program writes it: a second one by another key, or
            # text around it, would make a downloader's gpg fail or tell them something else.
            if str(sig).encode("utf-8") != signature:
                return False
            with _streamed(path) as stream:
                self._pysequoia.verify(file=stream, store=self._store, signature=sig)
        except Exception:  # noqa: BLE001 -- a signature that does not parse or verify is not this key's
            return False
        return True

    def verifies_bytes(self, data: bytes, signature: bytes) -> bool:
        try:
            sig = self._pysequoia.Sig.from_bytes(signature)
            if bytes(sig) != signature:  # one binary signature packet, nothing else
                return False
            self._pysequoia.verify(bytes=data, store=self._store, signature=sig)
        except Exception:  # noqa: BLE001
            return False
        return True

    def _store(self, key_ids: object) -> list[object]:
        return [self._certificate]


class MinisignKey(PublicKey):
    format = "minisign"
    suffix = ".minisig"

    def __init__(self, key_id: bytes, public: bytes):
        self._key_id = key_id
        self.public = public
        self.key_id = f"{int.from_bytes(key_id, 'little'):016X}"

    @property
    def line(self) -> str:
        """The public key as minisign -P takes it."""
        return base64.b64encode(minisign.ALGORITHM + self._key_id + self.public).decode("ascii")

    @staticmethod
    def trusted_comment(tag: str, name: str, *, timestamp: int) -> str:
        """Signed with the file: when, which file, and which release. One line, as minisign keeps it."""
        fields = f"file:{name}\ttag:{tag}"
        return f"timestamp:{timestamp}\t" + "".join(c if c.isprintable() or c == "\t" else "?" for c in fields)

    def verifies_file(self, path: Path, signature: bytes, *, name: str, tag: str | None) -> bool:
        try:
            comment = minisign.verify(self._key_id, self.public, signature, prehash(path))
        except OSError:  # a file that cannot be read again is not one this signature covers
            return False
        if comment is None:
            return False
        # A signature of these bytes made for another file or release says otherwise.
        fields = comment.split("\t", 1)[-1]
        wanted = self.trusted_comment("" if tag is None else tag, name, timestamp=0).split("\t", 1)[1]
        return fields.startswith(wanted) and "\t" not in fields[len(wanted) :] if tag is None else fields == wanted

    def verifies_bytes(self, data: bytes, signature: bytes) -> bool:
        return minisign.verify_raw(self.public, data, signature)


def read(raw: str, expected_id: str | None = None) -> PublicKey:
    """The publisher's public key from ``raw``: the path of a key file (an OpenPGP certificate, armored
    or binary, or minisign.pub), or a minisign public key itself. ``expected_id``, when given, must be
    its fingerprint or key id. InputError for anything else."""
    data = _key_bytes(raw)
    text = data.decode("utf-8", "replace").strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    candidate = lines[-1] if len(lines) in (1, 2) else ""
    public = minisign.public_key(candidate) if candidate and not text.startswith("-----") else None
    if public is not None:
        key: PublicKey = MinisignKey(*public)
    else:
        key = _openpgp(data)
    if expected_id is not None:
        wanted = "".join(expected_id.split()).upper().removeprefix("0X")
        if not wanted or not (
            key.key_id == wanted or (key.format == "openpgp" and len(wanted) >= 16 and key.key_id.endswith(wanted))
        ):
            raise InputError(
                f"The key given is the {key.format} key {key.key_id}, not {expected_id.strip()[:80]};"
                " check that it is the publisher's key."
            )
    return key


def _key_bytes(raw: str) -> bytes:
    path = Path(raw)
    try:
        if len(raw) < 4096 and path.is_file():
            with open(path, "rb") as handle:
                data = handle.read(MAX_KEY_BYTES + 1)
            if len(data) > MAX_KEY_BYTES:
                raise InputError(f"{raw} is larger than 1 MiB, which is not a public key.")
            return data
    except OSError as error:
        raise InputError(f"The key file {raw} cannot be read: {error.strerror}.") from None
    if minisign.public_key(raw.strip()) is not None:
        return raw.strip().encode("ascii")
    raise InputError(
        "--key must name a public key file (an OpenPGP certificate or minisign.pub), or be a"
        " minisign public key (RW...); nothing was checked."
    )


def _openpgp(data: bytes) -> OpenPgpKey:
    library = pysequoia()
    try:  # Sequoia's errors are worded for developers, with a backtrace
        certificate = library.Cert.from_bytes(data)
    except Exception:  # noqa: BLE001
        raise InputError(
            "The key given is neither a minisign public key nor a readable OpenPGP certificate;"
            " give the publisher's public key (gpg --armor --export, or minisign.pub)."
        ) from None
    return OpenPgpKey(certificate)


def pysequoia():
    # Imported only for OpenPGP keys: it is a large native module, and most runs sign nothing.
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import pysequoia as library
    except ImportError:
        raise InputError(
            "The key is an OpenPGP key, and pysequoia, the library that checks it, is not installed;"
            " pip install pysequoia, or use the container."
        ) from None
    return library


def prehash(path: Path) -> bytes:
    """The file's BLAKE2b-512, read in pieces: memory stays flat however large the file."""
    digest = minisign.prehash()
    with open(path, "rb", buffering=0) as handle:
        while piece := handle.read(READ_BYTES):
            digest.update(piece)
    return digest.digest()


@contextlib.contextmanager
def _streamed(path: Path) -> Iterator[str]:
    """A path from which Sequoia reads the file at ``path`` in pieces. Given the file itself, it maps it
    into memory whole, and every page it reads then counts as the process's (a 1 GiB file, 1 GiB); from
    a pipe it reads in pieces. pysequoia holds the GIL while it reads, so no thread of ours could feed
    the pipe: cat does, given the open file and no environment."""
    cat = shutil.which("cat")
    if os.name != "posix" or cat is None:  # elsewhere Sequoia reads files in pieces
        yield str(path)
        return
    read_end, write_end = os.pipe()
    try:
        with open(path, "rb") as source:
            feeder = subprocess.Popen([cat], stdin=source, stdout=write_end, stderr=subprocess.DEVNULL, env={})
    except OSError:
        os.close(read_end)
        raise
    finally:
        os.close(write_end)
    try:
        yield f"/dev/fd/{read_end}"
    finally:
        os.close(read_end)  # cat, if still writing, ends on the broken pipe
        feeder.wait()
