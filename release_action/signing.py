"""Signatures: the user's own key signs what the release publishes, offline, as goreleaser does.

Both formats sign in this process, and the key is never written anywhere, decrypted or not: a run
killed with no chance to clean up (a runner's time limit, the OOM killer) leaves nothing behind
that signs, and a crash writes no core dump of the memory that holds it. OpenPGP keys sign with
pysequoia, Sequoia's OpenPGP library: no agent, no socket.
minisign keys are read, decrypted and used as minisign itself does (minisign.py), with Ed25519
from the cryptography package; a protected key's password derivation takes seconds and 1 GiB,
once per run.

Every key problem is found by ``open_signer`` with a probe signature, before the first request.
"""

from __future__ import annotations

import abc
import base64
import binascii
import contextlib
import datetime
import logging
import shlex
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, TypeVar

from . import minisign, public_keys
from .errors import ActionError, InputError

log = logging.getLogger(__name__)
T = TypeVar("T")

FORMATS = ("openpgp", "minisign")
#: What is signed: the checksums file only, or every file the release publishes.
SIGN_FILES = ("checksums", "all")
#: A key is a few kilobytes; anything larger named as a file is not a key.
MAX_KEY_BYTES = 1 << 20
PROBE = b"release-action checks that this key signs\n"
#: prctl's option (linux/prctl.h) that says whether the process may dump core or be traced.
PR_SET_DUMPABLE = 4


@dataclass(frozen=True)
class SigningKey:
    """The user's key, as inputs read it; ``text`` and ``passphrase`` are secrets."""

    text: str = field(repr=False)
    passphrase: str | None = field(repr=False)
    format: str
    #: ``checksums`` or ``all`` (SIGN_FILES).
    sign_files: str


def read_key(raw: str, on_secret: Callable[[str], None]) -> str:
    """The key's text from the input: the key itself, its base64 (a value GitLab can mask), or the path of
    a file holding it (a GitLab file variable). Each secret line is registered before anything else."""
    text = raw.strip()
    if not _looks_like_key(text):
        decoded = _base64_text("".join(text.split()))  # base64 wraps at 76 columns unless told -w0
        if decoded is not None:
            for line in text.splitlines():
                on_secret(line.strip())
            text = decoded.strip()
        elif "\n" not in text and _is_file(text):
            text = _read_file(Path(text)).strip()
    for line in secret_lines(text):
        on_secret(line)
    if not _looks_like_key(text):
        raise InputError(
            "Input 'signing_key' is not an armored OpenPGP secret key, a minisign secret key, the"
            " base64 of one, or the path of a file holding one; check how the secret was stored."
        )
    return text


def secret_lines(text: str) -> list[str]:
    """The lines of a key that are key material: not its armor lines, headers or comments, which say
    only what the text is and would hide those words everywhere if masked."""
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("-----") and ":" not in line]


def detect_format(text: str) -> str:
    return "minisign" if text.startswith("untrusted comment:") else "openpgp"


def _looks_like_key(text: str) -> bool:
    return text.startswith(("-----BEGIN PGP ", "untrusted comment:"))


def _base64_text(text: str) -> str | None:
    try:
        decoded = base64.b64decode(text, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    return decoded if _looks_like_key(decoded.strip()) else None


def _is_file(text: str) -> bool:
    try:
        return len(text) < 4096 and Path(text).is_file()
    except (OSError, ValueError):
        return False


def _read_file(path: Path) -> str:
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_KEY_BYTES + 1)
    except OSError as error:
        raise InputError(f"Input 'signing_key' names a file that cannot be read: {error.strerror}.") from None
    if len(data) > MAX_KEY_BYTES:
        raise InputError("Input 'signing_key' names a file larger than 1 MiB, which is not a key.")
    return data.decode("utf-8", "replace")


class Signer(abc.ABC):
    """A key that signs, and checks signatures made by itself."""

    format: ClassVar[str]
    #: Appended to a signed file's name to name its signature.
    suffix: ClassVar[str]
    #: The OpenPGP fingerprint, or the minisign key id, as the verifying programs print it.
    key_id: str
    #: What a downloader verifies with: the armored OpenPGP public key, or minisign's public key line.
    public_key: str
    #: The same key, as the program checks signatures with it.
    public: public_keys.PublicKey

    @abc.abstractmethod
    def sign(self, path: Path, output: Path, *, tag: str, name: str) -> None:
        """Write a detached signature of the file at ``path`` (published as ``name``) to ``output``."""

    @abc.abstractmethod
    def verifies(self, path: Path, signature: bytes, *, tag: str, name: str) -> bool:
        """True when ``signature`` is this key's, over the file at ``path``, made for ``name`` in ``tag``."""

    @abc.abstractmethod
    def sign_bytes(self, data: bytes) -> bytes:
        """The raw signature of ``data`` that a DSSE envelope holds (public_keys.PublicKey.verifies_bytes)."""

    @abc.abstractmethod
    def commands(self, signature: str, signed: str) -> list[str]:
        """What someone who downloaded the release runs to check ``signed`` against ``signature``."""

    def signature_name(self, name: str) -> str:
        return name + self.suffix

    def probe(self, folder: Path) -> None:
        """Sign and verify a small file: a wrong passphrase or an unusable key fails here, before any request."""
        probe, signature = folder / "probe", folder / ("probe" + self.suffix)
        probe.write_bytes(PROBE)
        self.sign(probe, signature, tag="probe", name="probe")
        if not self.verifies(probe, signature.read_bytes(), tag="probe", name="probe"):
            raise InputError(
                f"The {self.format} key in input 'signing_key' made a signature that does not verify; check the key."
            )


def open_signer(key: SigningKey, *, probe: bool = True) -> Signer:
    """The signer for ``key``, checked by a probe signature."""
    _keep_memory_private()
    signer = OpenPgp(key) if key.format == "openpgp" else Minisign(key)
    if probe:
        with tempfile.TemporaryDirectory(prefix="release-action-probe-") as folder:  # a text and its signature
            signer.probe(Path(folder))
    return signer


def _keep_memory_private() -> None:
    """The unlocked key lives in this process's memory from here on: a crash must not write it into a core
    file in the working directory (minisign keeps its keys out of core dumps too), nor may another process
    of the same user read it (ptrace, /proc/PID/mem). On Linux the process is made not dumpable, which does
    both; elsewhere its core dumps are switched off."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
        return
    with contextlib.suppress(ImportError, ValueError, OSError):  # Windows has no resource module, nor core files
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))


def _passphrase_not_needed(key: str) -> None:
    log.warning("%s in input 'signing_key' has no passphrase; input 'signing_passphrase' is not used.", key)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class OpenPgp(Signer):
    format = "openpgp"
    suffix = ".asc"

    def __init__(self, key: SigningKey):
        pysequoia = _pysequoia()
        data = key.text.encode("utf-8")
        try:  # Sequoia's errors (RuntimeError, ValueError) are worded for developers, with a backtrace
            cert = pysequoia.Cert.from_bytes(data)
            self.key_id = cert.fingerprint.upper()
            with warnings.catch_warnings():  # deprecated for Tsk, which cannot tell: it reads a public key too
                warnings.simplefilter("ignore", DeprecationWarning)
                public_only = not cert.has_secret_keys
            revoked, expiration = cert.is_revoked, cert.expiration
        except Exception:  # noqa: BLE001
            raise InputError(
                "Input 'signing_key' is not a readable OpenPGP key: its armor, packets or"
                " self-signatures are damaged; export it again with gpg --armor --export-secret-keys."
            ) from None
        if public_only:
            raise InputError(
                f"Input 'signing_key' holds only the public OpenPGP key {self.key_id}; give the secret"
                " key (gpg --armor --export-secret-keys)."
            )
        if revoked:
            raise InputError(f"The OpenPGP key {self.key_id} in input 'signing_key' is revoked; sign with another.")
        if expiration is not None and expiration <= _now():
            raise InputError(
                f"The OpenPGP key {self.key_id} in input 'signing_key' expired on"
                f" {expiration:%Y-%m-%d}; extend it (gpg --quick-set-expire) or sign with another."
            )
        self._signer = self._unlock(pysequoia.Tsk.from_bytes(data), key.passphrase)
        self.public = public_keys.OpenPgpKey(cert)
        # The certificate is exported without its secret parts.
        self.public_key = str(pysequoia.Tsk.from_bytes(data).extract_certificate())
        self._pysequoia = pysequoia

    def _unlock(self, tsk: object, passphrase: str | None) -> object:
        if passphrase is not None:
            with contextlib.suppress(Exception):  # Sequoia refuses any passphrase for a key that has none
                return tsk.signer(passphrase)  # type: ignore[attr-defined]
        try:
            signer = tsk.signer(None)  # type: ignore[attr-defined]
        except Exception as error:  # noqa: BLE001 -- Sequoia says why only in its message
            reason = str(error)
        else:
            if passphrase is not None:
                _passphrase_not_needed(f"The OpenPGP key {self.key_id}")
            return signer
        if "No suitable signing" in reason:
            raise InputError(
                f"The OpenPGP key {self.key_id} in input 'signing_key' has no key that can sign now:"
                " its signing subkey expired or was revoked, or it has keys for encryption only."
            )
        if passphrase is None:
            raise InputError(
                f"The OpenPGP key {self.key_id} in input 'signing_key' is protected by a passphrase;"
                " set input 'signing_passphrase'."
            )
        raise InputError(
            f"The OpenPGP key {self.key_id} in input 'signing_key' cannot be unlocked with"
            " input 'signing_passphrase': the passphrase is wrong."
        )

    def sign(self, path: Path, output: Path, *, tag: str, name: str) -> None:
        self._pysequoia.sign_file(self._signer, str(path), str(output), mode=self._pysequoia.SignatureMode.DETACHED)

    def verifies(self, path: Path, signature: bytes, *, tag: str, name: str) -> bool:
        return self.public.verifies_file(path, signature, name=name, tag=tag)

    def sign_bytes(self, data: bytes) -> bytes:
        return bytes(self._pysequoia.sign(self._signer, data, mode=self._pysequoia.SignatureMode.DETACHED, armor=False))

    def commands(self, signature: str, signed: str) -> list[str]:
        return [f"gpg --verify {shlex.quote(signature)} {shlex.quote(signed)}"]


def _pysequoia():
    # Imported only to sign: it is a large native module, and most runs sign nothing.
    try:
        return public_keys.pysequoia()
    except InputError:
        raise InputError(
            "Input 'signing_key' is an OpenPGP key, and pysequoia, the library that signs with it,"
            " is not installed; pip install pysequoia, or use the container."
        ) from None


class Minisign(Signer):
    format = "minisign"
    suffix = ".minisig"
    public: public_keys.MinisignKey

    def __init__(self, key: SigningKey):
        stored = minisign.read_secret_key(key.text)
        secret_password = None
        if stored.encrypted:
            if not key.passphrase:
                raise InputError(
                    "The minisign key in input 'signing_key' is protected by a password; set input"
                    " 'signing_passphrase'."
                )
            secret_password = minisign.password(key.passphrase)
        elif key.passphrase:
            _passphrase_not_needed("The minisign key")
        self._key = _interruptible(lambda: minisign.unlock(stored, secret_password))
        self.public_key, self.key_id = self._key.public_key_line, self._key.id_text
        self.public = public_keys.MinisignKey(self._key.key_id, self._key.public)

    def sign(self, path: Path, output: Path, *, tag: str, name: str) -> None:
        comment = self.public.trusted_comment(tag, name, timestamp=int(_now().timestamp()))
        try:
            digest = public_keys.prehash(path)
        except OSError as error:
            raise ActionError(f"{path} could not be read again to sign it: {error.strerror}.") from None
        output.write_bytes(self._key.signature_file(digest, comment))

    def verifies(self, path: Path, signature: bytes, *, tag: str, name: str) -> bool:
        return self.public.verifies_file(path, signature, name=name, tag=tag)

    def sign_bytes(self, data: bytes) -> bytes:
        return self._key.sign_raw(data)

    def commands(self, signature: str, signed: str) -> list[str]:
        return [f"minisign -V -P {self.public_key} -m {shlex.quote(signed)} -x {shlex.quote(signature)}"]


def _interruptible(work: Callable[[], T]) -> T:
    """``work``'s result, computed on a thread of its own: hashlib.scrypt holds no lock while it derives,
    and a signal is handled only when the main thread runs Python, so SIGTERM stops the run at once
    instead of after seconds of derivation (the thread, a daemon, is left to the exit)."""
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as error:  # noqa: BLE001 -- raised again below, in the caller's thread
            outcome["error"] = error

    thread = threading.Thread(target=run, name="minisign-unlock", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]
