"""Signing keys made by the real gpg and minisign, as a user makes them, and the downloader's checks.

gpg runs in a private home of its own; the agent it starts is stopped by its PID once the keys
are exported, and the downloader's gpg never starts one (``--no-autostart``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

PASSPHRASE = "correct horse battery staple"


@dataclass(frozen=True)
class Key:
    secret: str
    public: str
    #: The OpenPGP fingerprint, or the minisign key id.
    key_id: str
    passphrase: str | None = PASSPHRASE


def gpg(home: Path, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", *args],
        input=stdin,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=120,
        env={"PATH": os.environ["PATH"], "LC_ALL": "C"},
    )
    assert not check or done.returncode == 0, done.stderr
    return done


def openpgp_keys(folder: Path) -> dict[str, Key]:
    """Keys a user may hold: Ed25519 with a passphrase, RSA, a signing subkey, none, expired, encryption only."""
    home = folder / "gnupg"
    home.mkdir(mode=0o700)
    protect = ["--pinentry-mode", "loopback", "--passphrase", PASSPHRASE]
    made = {
        "ed25519": ("Ed Bot <ed@example.org>", [["ed25519", "sign", "1y"]], protect, []),
        "rsa": ("RSA Bot <rsa@example.org>", [["rsa3072", "sign", "1y"]], protect, []),
        "subkey": ("Sub Bot <sub@example.org>", [["ed25519", "cert", "1y"], ["ed25519", "sign", "1y"]], protect, []),
        "bare": (
            "Bare Bot <bare@example.org>",
            [["ed25519", "sign", "1y"]],
            ["--pinentry-mode", "loopback", "--passphrase", ""],
            [],
        ),
        "expired": (
            "Old Bot <old@example.org>",
            [["ed25519", "sign", "1d"]],
            protect,
            ["--faked-system-time", "20200101T000000"],
        ),
        "encrypt_only": (
            "Enc Bot <enc@example.org>",
            [["ed25519", "cert", "1y"], ["cv25519", "encr", "1y"]],
            protect,
            [],
        ),
    }
    keys = {}
    try:
        for label, (user, parts, secret, clock) in made.items():
            gpg(home, *secret, *clock, "--quick-gen-key", user, *parts[0])
            fingerprint = _fingerprint(home, user)
            for extra in parts[1:]:
                gpg(home, *secret, *clock, "--quick-add-key", fingerprint, *extra)
            keys[label] = Key(
                secret=gpg(home, *secret, "--armor", "--export-secret-keys", fingerprint).stdout,
                public=gpg(home, "--armor", "--export", fingerprint).stdout,
                key_id=fingerprint,
                passphrase=None if label == "bare" else PASSPHRASE,
            )
    finally:
        _stop_agent(home)
    return keys


def _fingerprint(home: Path, user: str) -> str:
    listing = gpg(home, "--with-colons", "--list-keys", user).stdout
    return next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))


def _stop_agent(home: Path) -> None:
    """Stop the agent gpg started for the key generation, by its PID, and wait until it is gone."""
    done = subprocess.run(
        ["gpg-connect-agent", "--homedir", str(home), "--no-autostart", "GETINFO pid", "/bye"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    pids = [int(line.split()[1]) for line in done.stdout.splitlines() if line.startswith("D ")]
    for pid in pids:
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            if not Path(f"/proc/{pid}").exists():
                break
            time.sleep(0.05)


def minisign_keys(folder: Path) -> dict[str, Key]:
    """A password-protected minisign key and an unencrypted one, made by minisign itself."""
    keys = {}
    for label, password in (("protected", PASSPHRASE), ("unencrypted", None)):
        secret, public = folder / f"{label}.key", folder / f"{label}.pub"
        extra = [] if password else ["-W"]
        subprocess.run(
            ["minisign", "-G", "-f", *extra, "-p", str(public), "-s", str(secret)],
            input=f"{password}\n{password}\n" if password else "",
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        line = public.read_text().splitlines()[-1]
        import base64

        key_id = f"{int.from_bytes(base64.b64decode(line)[2:10], 'little'):016X}"
        keys[label] = Key(secret=secret.read_text(), public=public.read_text(), key_id=key_id, passphrase=password)
    return keys


def gpg_verifies(folder: Path, key: Key, signature: str, signed: str) -> subprocess.CompletedProcess:
    """What a downloader runs: import the published public key into a fresh keyring, then gpg --verify."""
    home = folder.parent / f"{folder.name}-verifier"
    home.mkdir(mode=0o700, exist_ok=True)
    gpg(home, "--no-autostart", "--import", stdin=key.public)
    return gpg(
        home,
        "--no-autostart",
        "--status-fd",
        "1",
        "--verify",
        str(folder / signature),
        str(folder / signed),
        check=False,
    )


def sqv_verifies(folder: Path, key: Key, signature: str, signed: str) -> subprocess.CompletedProcess:
    keyring = folder.parent / f"{folder.name}-keyring.asc"
    keyring.write_text(key.public)
    return subprocess.run(
        ["sqv", "--keyring", str(keyring), str(folder / signature), str(folder / signed)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def minisign_verifies(folder: Path, key: Key, signature: str, signed: str) -> subprocess.CompletedProcess:
    public = folder.parent / f"{folder.name}-minisign.pub"
    public.write_text(key.public)
    return subprocess.run(
        ["minisign", "-V", "-p", str(public), "-m", str(folder / signed), "-x", str(folder / signature)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def minisign_secret(key: Key, folder: Path) -> tuple[bytes, str]:
    """What unlocking ``key`` yields: its raw Ed25519 secret key (64 bytes) and the text of the key file
    with the password removed, both made by minisign itself (-C -W) in ``folder``."""
    import base64

    copy = folder / "unlocked.key"
    copy.write_text(key.secret)
    if key.passphrase:
        subprocess.run(
            ["minisign", "-C", "-W", "-s", str(copy)],
            input=f"{key.passphrase}\n",
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
    text = copy.read_text()
    raw = base64.b64decode(text.splitlines()[1])
    return raw[62:126], text


def minisign_signs(path: Path, folder: Path, password: str | None = None) -> bool:
    """Whether ``minisign -S`` signs with the file at ``path`` as its key, given ``password`` (none: empty)."""
    message = folder / "message"
    message.write_bytes(b"anything\n")
    done = subprocess.run(
        ["minisign", "-S", "-s", str(path), "-m", str(message), "-x", str(folder / "message.sig")],
        input=f"{password}\n".encode() if password else b"",
        capture_output=True,
        timeout=120,
        env={"PATH": os.environ["PATH"], "HOME": str(folder)},
    )
    return done.returncode == 0


def minisign_key_with_limits(key: Key, folder: Path, opslimit: int, memlimit: int) -> Key:
    """``key`` encrypted again under other scrypt limits, as minisign would write it with them. The scrypt
    parameters are the program's reading of the limits: the real minisign unlocking the key checks it."""
    import base64
    import hashlib

    from release_action.minisign import scrypt_parameters

    _, unlocked = minisign_secret(key, folder)
    plain = base64.b64decode(unlocked.splitlines()[1])
    key_id, secret = plain[54:62], plain[62:126]
    checksum = hashlib.blake2b(b"Ed" + key_id + secret, digest_size=32).digest()
    salt, chosen = os.urandom(32), scrypt_parameters(opslimit, memlimit)
    stream = hashlib.scrypt(
        key.passphrase.encode(), salt=salt, n=chosen.n, r=chosen.r, p=chosen.p, maxmem=chosen.memory, dklen=104
    )
    sealed = bytes(a ^ b for a, b in zip(key_id + secret + checksum, stream, strict=True))
    raw = b"EdScB2" + salt + opslimit.to_bytes(8, "little") + memlimit.to_bytes(8, "little") + sealed
    text = f"untrusted comment: minisign encrypted secret key\n{base64.b64encode(raw).decode()}\n"
    return Key(secret=text, public=key.public, key_id=key.key_id, passphrase=key.passphrase)
