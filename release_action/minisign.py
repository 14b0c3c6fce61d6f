"""minisign's own formats, as its reference program reads and writes them: the secret key, the
password derivation that encrypts it, and the signature file. Functions over bytes; signing.py
reads the files and the inputs.

A secret key, once its base64 is undone, is 158 bytes: the signature algorithm ``Ed``, the key
derivation (``Sc`` for scrypt, two zero bytes for none), the checksum algorithm ``B2``, a 32-byte
salt, scrypt's opslimit and memlimit (u64, little-endian), then 104 bytes XOR-ed with scrypt's
output: the 8-byte key id, the 64-byte Ed25519 secret key (its seed, then its public key) and the
BLAKE2b-256 checksum of the algorithm, the key id and the secret key.

A signature file has four lines: an untrusted comment, the base64 of ``ED`` (Ed25519 over the
file's BLAKE2b-512, minisign's default), the key id and the signature, then the trusted comment,
and the base64 of the global signature, over the signature and the trusted comment.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass, field

from .errors import ActionError, InputError

SECRET_KEY_BYTES, PUBLIC_KEY_BYTES = 158, 42
ALGORITHM, PREHASHED, CHECKSUM = b"Ed", b"ED", b"B2"
SCRYPT, NO_KDF = b"Sc", b"\0\0"
KEY_ID_BYTES, SEED_BYTES, SIGNATURE_BYTES = 8, 32, 64
#: The key id, the secret key and the checksum, which scrypt's output encrypts.
SEALED_BYTES = KEY_ID_BYTES + 64 + 32
#: minisign reads a password as one line of at most this many bytes.
PASSWORD_BYTES = 1023
#: What minisign -G asks of scrypt (libsodium's "sensitive" limits): N = 2^20, r = 8, p = 1.
SENSITIVE_OPSLIMIT, SENSITIVE_MEMLIMIT = 1 << 25, 1 << 30
#: A key may ask for less than minisign's own keys, for hardly more memory (a few more of scrypt's
#: 1 KiB blocks) and for at most this many times their work: a key's limits are 16 bytes anyone can
#: write, and scrypt takes what they say.
WORK_ALLOWED, MEMORY_ROOM = 4, 1 << 20
UNTRUSTED_COMMENT = b"untrusted comment: signature from minisign secret key"
TRUSTED_PREFIX = b"trusted comment: "
#: minisign refuses to sign with a longer trusted comment, and its -V would cut one.
TRUSTED_COMMENT_BYTES = 8192 - len(TRUSTED_PREFIX) - 1


@dataclass(frozen=True)
class StoredKey:
    """A secret key as its file holds it; ``sealed`` is encrypted when ``encrypted``."""

    kdf: bytes
    salt: bytes
    opslimit: int
    memlimit: int
    sealed: bytes = field(repr=False)

    @property
    def encrypted(self) -> bool:
        return self.kdf == SCRYPT


@dataclass(frozen=True)
class Scrypt:
    """scrypt's parameters, as libsodium picks them from a key's opslimit and memlimit."""

    n: int
    r: int
    p: int

    @property
    def memory(self) -> int:
        """What OpenSSL reserves for them: the table of N + 2 blocks, and p more."""
        return 128 * self.r * (self.n + 2 + self.p)

    @property
    def work(self) -> int:
        return self.n * self.r * self.p


def read_secret_key(text: str) -> StoredKey:
    """The key in minisign.key's text; InputError for a public key or anything cut or damaged."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    raw = _base64(lines[1]) if len(lines) == 2 else b""
    if len(raw) == PUBLIC_KEY_BYTES:
        raise InputError("Input 'signing_key' holds a minisign public key; give the secret key (minisign.key).")
    if len(raw) != SECRET_KEY_BYTES or raw[:2] != ALGORITHM or raw[4:6] != CHECKSUM or raw[2:4] not in (SCRYPT, NO_KDF):
        raise InputError(
            "Input 'signing_key' is not a readable minisign secret key: it is cut or damaged;"
            " paste the whole minisign.key file."
        )
    return StoredKey(
        kdf=raw[2:4],
        salt=raw[6:38],
        opslimit=int.from_bytes(raw[38:46], "little"),
        memlimit=int.from_bytes(raw[46:54], "little"),
        sealed=raw[54:],
    )


def scrypt_parameters(opslimit: int, memlimit: int) -> Scrypt:
    """libsodium's pickparams (crypto_pwhash_scryptsalsa208sha256), which minisign derives with."""
    opslimit = max(opslimit, 32768)
    r = 8
    if opslimit < memlimit // 32:
        p, largest_n = 1, opslimit // (r * 4)
        return Scrypt(n=1 << _log2_n(largest_n), r=r, p=p)
    n = 1 << _log2_n(memlimit // (r * 128))
    return Scrypt(n=n, r=r, p=min((opslimit // 4) // n, 0x3FFFFFFF) // r)


def _log2_n(largest_n: int) -> int:
    """The smallest power of two above half of ``largest_n``, from 2^1 to 2^63."""
    log2 = 1
    while log2 < 63 and 1 << log2 <= largest_n // 2:
        log2 += 1
    return log2


ALLOWED = scrypt_parameters(SENSITIVE_OPSLIMIT, SENSITIVE_MEMLIMIT)


def password(passphrase: str) -> bytes:
    """The password as minisign reads it: the first line of what it is given, at most 1023 bytes."""
    read = (passphrase.encode("utf-8", "surrogateescape") + b"\n")[:PASSWORD_BYTES]  # the variable's own bytes
    return read.split(b"\n", 1)[0].removesuffix(b"\r")


def unlock(key: StoredKey, secret_password: bytes | None) -> Keypair:
    """The key pair ``key`` holds, decrypted with ``secret_password`` when it is encrypted."""
    _ed25519()  # a missing library is said before seconds of derivation
    sealed = key.sealed
    if key.encrypted:
        sealed = bytes(a ^ b for a, b in zip(sealed, _derive(key, secret_password or b""), strict=False))
    key_id, secret, checksum = sealed[:8], sealed[8:72], sealed[72:]
    unchecked = not key.encrypted and checksum == bytes(32)  # minisign -G -W writes no checksum
    if hashlib.blake2b(ALGORITHM + key_id + secret, digest_size=32).digest() != checksum and not unchecked:
        if key.encrypted:
            raise InputError(
                "The minisign key in input 'signing_key' cannot be unlocked with input"
                " 'signing_passphrase': the password is wrong, or the key is damaged."
            )
        raise InputError("The minisign key in input 'signing_key' is damaged: its checksum does not match.")
    keypair = Keypair(key_id, secret)
    if keypair.public != secret[SEED_BYTES:]:
        raise InputError("The minisign key in input 'signing_key' is damaged: its public half is not its secret's.")
    return keypair


def _derive(key: StoredKey, secret_password: bytes) -> bytes:
    wanted = scrypt_parameters(key.opslimit, key.memlimit)
    if wanted.memory > ALLOWED.memory + MEMORY_ROOM or wanted.work > WORK_ALLOWED * ALLOWED.work:
        raise InputError(
            f"The minisign key in input 'signing_key' asks for {wanted.memory >> 20} MiB and"
            f" {wanted.work / ALLOWED.work:.3g} times the work of minisign's own keys to derive its password, more"
            f" than their {ALLOWED.memory >> 20} MiB and {WORK_ALLOWED} times allowed; set its password again with"
            " minisign -C, which derives as minisign -G does."
        )
    try:
        return hashlib.scrypt(
            secret_password, salt=key.salt, n=wanted.n, r=wanted.r, p=wanted.p, maxmem=wanted.memory, dklen=SEALED_BYTES
        )
    except (MemoryError, ValueError):  # OpenSSL says only that it failed: its allocation, on a small runner
        raise InputError(
            f"The minisign key in input 'signing_key' could not be unlocked: deriving its password"
            f" takes {wanted.memory >> 20} MiB of memory, which this runner did not give."
        ) from None


class Keypair:
    """An unlocked key: it signs, and gives the public key line a downloader verifies with."""

    def __init__(self, key_id: bytes, secret: bytes):
        self.key_id = key_id
        self._private = _ed25519().Ed25519PrivateKey.from_private_bytes(secret[:SEED_BYTES])
        self.public = self._private.public_key().public_bytes_raw()

    def __repr__(self) -> str:
        return f"Keypair({self.id_text})"

    @property
    def id_text(self) -> str:
        """The key id as minisign prints it."""
        return f"{int.from_bytes(self.key_id, 'little'):016X}"

    @property
    def public_key_line(self) -> str:
        return base64.b64encode(ALGORITHM + self.key_id + self.public).decode("ascii")

    def signature_file(self, digest: bytes, trusted_comment: str) -> bytes:
        """The signature file of a file whose BLAKE2b-512 is ``digest``, byte for byte as minisign -S writes it."""
        comment = trusted_comment.encode("utf-8")
        if b"\n" in comment or b"\r" in comment or len(comment) > TRUSTED_COMMENT_BYTES:
            raise ActionError(
                f"minisign's trusted comment holds one line of at most {TRUSTED_COMMENT_BYTES} bytes,"
                f" and this one is {len(comment)}; use a shorter tag."
            )
        signature = self._private.sign(digest)
        lines = [
            UNTRUSTED_COMMENT,
            _b64(PREHASHED + self.key_id + signature),
            TRUSTED_PREFIX + comment,
            _b64(self._private.sign(signature + comment)),
        ]
        return b"".join(line + b"\n" for line in lines)

    def sign_raw(self, data: bytes) -> bytes:
        """Plain Ed25519 over ``data``, no prehash: what a DSSE envelope's verifiers expect."""
        return self._private.sign(data)


def public_key(line: str) -> tuple[bytes, bytes] | None:
    """The key id and Ed25519 public key in minisign's public key line (``RW...``); None for anything else."""
    raw = _base64(line.strip())
    if len(raw) != PUBLIC_KEY_BYTES or raw[:2] != ALGORITHM:
        return None
    return raw[2:10], raw[10:]


def verify(key_id: bytes, public: bytes, data: bytes, digest: bytes) -> str | None:
    """The trusted comment of ``data``, a signature file laid out as minisign writes it, when it is the
    key's (``key_id``, ``public``) over a file whose BLAKE2b-512 is ``digest``; None otherwise."""
    lines = data.split(b"\n")  # as minisign splits it: at "\n" only
    if len(lines) != 5 or lines[0] != UNTRUSTED_COMMENT or lines[4] or not lines[2].startswith(TRUSTED_PREFIX):
        return None
    signed, comment, global_signature = _base64(lines[1]), lines[2][len(TRUSTED_PREFIX) :], _base64(lines[3])
    if len(signed) != 2 + KEY_ID_BYTES + SIGNATURE_BYTES or signed[:2] != PREHASHED:
        return None
    signature = signed[10:]
    if signed[2:10] != key_id or not verify_raw(public, digest, signature):
        return None
    if not verify_raw(public, signature + comment, global_signature):
        return None
    try:
        return comment.decode("utf-8")
    except UnicodeDecodeError:
        return None


def verify_raw(public: bytes, data: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is plain Ed25519 by ``public`` over ``data``."""
    try:
        _ed25519().Ed25519PublicKey.from_public_bytes(public).verify(signature, data)
    except (_ed25519_errors(), ValueError):
        return False
    return True


def prehash() -> hashlib.blake2b:
    """What minisign signs in place of a file: its BLAKE2b-512, fed in pieces."""
    return hashlib.blake2b(digest_size=64)


def _base64(text: str | bytes) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return b""


def _b64(data: bytes) -> bytes:
    return base64.b64encode(data)


def _ed25519():
    # Imported only to sign: cryptography is a large native module, and most runs sign nothing.
    try:
        import cryptography.hazmat.primitives.asymmetric.ed25519 as ed25519
    except ImportError:
        raise InputError(
            "Input 'signing_key' is a minisign key, and cryptography, the library that signs with it,"
            " is not installed; pip install cryptography, or use the container."
        ) from None
    return ed25519


def _ed25519_errors() -> type[Exception]:
    from cryptography.exceptions import InvalidSignature

    return InvalidSignature
