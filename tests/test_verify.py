"""The downloader's side: `release-action verify` checks a release published by the program, from the
forge and from a folder, and names each thing changed since; the signed attestations verify with a
verifier not written here (securesystemslib for minisign keys, sqv and gpg for OpenPGP keys)."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FORGE_NAMES, REPOSITORY, TOKEN, assert_no_token, download_release, run_program
from signing_keys import Key

from release_action.cli import main
from release_action.sandbox.state import StoredFile

FORGES = pytest.mark.parametrize("forge_name", FORGE_NAMES)
ATTESTATIONS = ("provenance.intoto.jsonl", "release.intoto.jsonl")


def signed(key: Key, **inputs: str) -> dict[str, str]:
    return {
        "checksums": "SHA256SUMS",
        "signing_key": key.secret,
        "signing_passphrase": key.passphrase or "",
        "provenance": "true",
        **inputs,
    }


def key_file(tmp_path: Path, key: Key, label: str = "publisher") -> Path:
    path = tmp_path / f"{label}.pub"
    path.write_text(key.public)
    return path


@pytest.fixture
def verify(forge, tmp_path, capsys):
    """Run `release-action verify` in this process; returns (exit code, what it printed)."""

    def run(*argv: str, forge_name: str = "gitflic", tag: str = "v1.0.0", where: str = "forge") -> tuple[int, str]:
        capsys.readouterr()
        source = (
            ["--forge", forge_name, "--api-url", forge.api_url(forge_name), "--repository", REPOSITORY, "--tag", tag]
            if where == "forge"
            else []
        )
        code = main(["verify", *source, *argv], {"INPUT_TOKEN": TOKEN})
        captured = capsys.readouterr()
        assert_no_token(captured.out + captured.err)
        return code, captured.out + captured.err

    return run


def _release(forge, tag: str = "v1.0.0"):
    [release] = [r for r in forge.releases(REPOSITORY) if r.tag == tag]
    return release


def _plant(forge, name: str, data: bytes, tag: str = "v1.0.0") -> None:
    """Put ``data`` in place of a stored file, as a forge (or anyone with its storage) could."""
    [stored_file] = [f for f in _release(forge, tag).files if f.name == name]
    stored_file.path.write_bytes(data)
    stored_file.size = len(data)
    stored_file.digests = {algorithm: hashlib.new(algorithm, data).hexdigest() for algorithm in stored_file.digests}


def _add_by_hand(forge, name: str, data: bytes, tag: str = "v1.0.0") -> None:
    release = _release(forge, tag)
    path = forge.state.storage / f"by-hand-{len(release.files)}"
    path.write_bytes(data)
    digests = {algorithm: hashlib.new(algorithm, data).hexdigest() for algorithm in ("md5", "sha1", "sha256")}
    release.files.append(StoredFile(f"hand{len(release.files)}", name, path, len(data), digests))


def _stored_bytes(forge, name: str, tag: str = "v1.0.0") -> bytes:
    return next(f for f in _release(forge, tag).files if f.name == name).path.read_bytes()


# -- a release the program published verifies, everywhere ------------------------------------------


@FORGES
@pytest.mark.parametrize("which", ["openpgp", "minisign"])
def test_a_published_release_verifies_from_the_forge_and_from_a_folder(
    publish, forge, verify, tmp_path, pgp, minisign, forge_name, which
):
    key = pgp["subkey"] if which == "openpgp" else minisign["protected"]
    run = publish(forge=forge_name, sign_files="all" if forge_name == "gitea" else "checksums", **signed(key))
    assert run.code == 0, run.log
    assert set(ATTESTATIONS) <= set(run.statuses())

    code, said = verify("--key", str(key_file(tmp_path, key)), "--key-id", key.key_id, forge_name=forge_name)
    assert code == 0 and said.rstrip().endswith(": verified."), said
    assert "FAIL" not in said

    folder = tmp_path / "downloaded"
    folder.mkdir()
    download_release(forge, forge_name, folder)
    code, said = verify("--dir", str(folder), "--key", str(key_file(tmp_path, key)), where="dir")
    assert code == 0 and "release v1.0.0" in said and said.rstrip().endswith(": verified."), said


def test_the_program_itself_verifies_and_says_so_in_json(publish, forge, tmp_path, minisign):
    key = minisign["unencrypted"]
    assert publish(**signed(key)).code == 0

    done = run_program(
        {"INPUT_TOKEN": TOKEN},
        "verify",
        "--forge",
        "gitflic",
        "--api-url",
        forge.api_url("gitflic"),
        "--repository",
        REPOSITORY,
        "--tag",
        "v1.0.0",
        "--key",
        key.public.splitlines()[-1],
        "--json",
    )

    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["verified"] is True and report["findings"] == [] and report["key_id"] == key.key_id
    assert set(report["files"]) >= {"SHA256SUMS", "SHA256SUMS.minisig", *ATTESTATIONS, "tool-linux-amd64.tar.gz"}
    assert TOKEN not in done.stdout + done.stderr


# -- each tampering is named -----------------------------------------------------------------------


def _byte_changed(forge, tmp_path, pgp):
    data = bytearray(_stored_bytes(forge, "tool-linux-amd64.tar.gz"))
    data[1000] ^= 1
    _plant(forge, "tool-linux-amd64.tar.gz", bytes(data))
    return {("changed", "tool-linux-amd64.tar.gz")}


def _file_added(forge, tmp_path, pgp):
    _add_by_hand(forge, "tool-darwin-arm64.zip", b"added later")
    return {("extra", "tool-darwin-arm64.zip"), ("added", "tool-darwin-arm64.zip")}


def _file_removed(forge, tmp_path, pgp):
    release = _release(forge)
    release.files = [f for f in release.files if f.name != "tool-windows-amd64.zip"]
    return {("missing", "tool-windows-amd64.zip"), ("removed", "tool-windows-amd64.zip")}


def _second_copy(forge, tmp_path, pgp):
    _add_by_hand(forge, "tool-windows-amd64.zip", b"another build")
    return {("duplicate", "tool-windows-amd64.zip")}


def _signature_replaced(forge, tmp_path, pgp):
    """A signature by another key over the very same checksums file, under the right name."""
    from release_action import signing

    other = signing.open_signer(signing.SigningKey(pgp["rsa"].secret, pgp["rsa"].passphrase, "openpgp", "checksums"))
    sums = tmp_path / "SHA256SUMS"
    sums.write_bytes(_stored_bytes(forge, "SHA256SUMS"))
    other.sign(sums, tmp_path / "SHA256SUMS.asc", tag="v1.0.0", name="SHA256SUMS")
    _plant(forge, "SHA256SUMS.asc", (tmp_path / "SHA256SUMS.asc").read_bytes())
    return {("signature", "SHA256SUMS.asc")}


def _signature_over_other_content(forge, tmp_path, pgp):
    """The right key's signature, of another release's checksums file."""
    _plant(forge, "SHA256SUMS.asc", _stored_bytes(forge, "SHA256SUMS.asc", "v1.1.0"))
    return {("signature", "SHA256SUMS.asc")}


def _attestation_swapped(forge, tmp_path, pgp):
    _plant(forge, "release.intoto.jsonl", _stored_bytes(forge, "release.intoto.jsonl", "v1.1.0"))
    return {("attestation", "release.intoto.jsonl")}


def _attestation_unsigned(forge, tmp_path, pgp):
    envelope = json.loads(_stored_bytes(forge, "provenance.intoto.jsonl"))
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["subject"].append(dict(statement["subject"][0]))  # a file listed twice
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    _plant(forge, "provenance.intoto.jsonl", json.dumps(envelope, separators=(",", ":")).encode() + b"\n")
    return {("attestation", "provenance.intoto.jsonl"), ("changed", "provenance.intoto.jsonl")}


TAMPERING = {
    "a byte of a file": _byte_changed,
    "a file added by hand": _file_added,
    "a file removed": _file_removed,
    "a second copy under one name": _second_copy,
    "a signature replaced": _signature_replaced,
    "a signature over other content": _signature_over_other_content,
    "an attestation swapped for another release's": _attestation_swapped,
    "an attestation rewritten": _attestation_unsigned,
}


@pytest.mark.parametrize("tampering", list(TAMPERING))
def test_each_tampering_is_named_with_exit_1(publish, forge, verify, tmp_path, pgp, tampering):
    key = pgp["ed25519"]
    assert publish(**signed(key)).code == 0
    assert publish(tag_name="v1.1.0", **signed(key)).code == 0

    expected = TAMPERING[tampering](forge, tmp_path, pgp)
    code, said = verify("--key", str(key_file(tmp_path, key)))

    assert code == 1, said
    assert "NOT verified" in said
    report = json.loads(_json_of(verify, key, tmp_path))
    found = {(finding["kind"], finding["name"]) for finding in report["findings"]}
    assert expected <= found, (expected, found)
    for _, name in expected:
        assert f"FAIL {name}: " in said


def _json_of(verify, key: Key, tmp_path: Path) -> str:
    code, said = verify("--key", str(key_file(tmp_path, key)), "--json")
    assert code == 1
    return said[said.index("{") : said.rindex("}") + 1]


@pytest.mark.parametrize("which", ["openpgp", "minisign"])
def test_the_key_of_someone_else_verifies_nothing(publish, forge, verify, tmp_path, pgp, minisign, which):
    key, other = (
        (pgp["ed25519"], pgp["rsa"]) if which == "openpgp" else (minisign["unencrypted"], minisign["protected"])
    )
    assert publish(**signed(key)).code == 0

    code, said = verify("--key", str(key_file(tmp_path, other, "someone-else")))

    assert code == 1, said
    suffix = ".asc" if which == "openpgp" else ".minisig"
    assert f"FAIL SHA256SUMS{suffix}: is not a signature of SHA256SUMS" in said
    for name in ATTESTATIONS:
        assert f"FAIL {name}: is not signed by" in said


def test_a_minisign_key_with_the_same_key_id_but_another_key_verifies_nothing(
    publish, forge, verify, tmp_path, minisign
):
    key, other = minisign["unencrypted"], minisign["protected"]
    assert publish(**signed(key)).code == 0
    ours, theirs = (base64.b64decode(k.public.splitlines()[-1]) for k in (key, other))
    lookalike = base64.b64encode(ours[:10] + theirs[10:]).decode()  # our key id, their key

    code, said = verify("--key", lookalike, "--key-id", key.key_id)

    assert code == 1 and "FAIL SHA256SUMS.minisig" in said, said


def test_a_key_id_that_is_not_the_key_s_is_a_usage_error(publish, forge, verify, tmp_path, pgp):
    assert publish(**signed(pgp["ed25519"])).code == 0

    code, said = verify("--key", str(key_file(tmp_path, pgp["ed25519"])), "--key-id", pgp["rsa"].key_id)

    assert code == 2 and pgp["rsa"].key_id in said and "Traceback" not in said, said


def test_no_release_for_the_tag_is_exit_3_and_a_missing_key_exit_2(forge, verify, tmp_path, pgp):
    code, said = verify("--key", str(key_file(tmp_path, pgp["ed25519"])), tag="v2.0.0")
    assert code == 3 and "no release" in said, said
    code, said = verify("--key", str(tmp_path / "nowhere.pub"))
    assert code == 2 and "Traceback" not in said, said


# -- a folder: links, extra files, names ------------------------------------------------------------


def test_a_folder_with_a_link_an_extra_file_and_a_crlf_checksums_file(publish, forge, verify, tmp_path, minisign):
    key = minisign["unencrypted"]
    assert publish(**signed(key)).code == 0
    folder = _downloaded(forge, tmp_path)
    code, said = verify("--dir", str(folder), "--key", str(key_file(tmp_path, key)), where="dir")
    assert code == 0, said

    (folder / "tool-linux-amd64.tar.gz").rename(tmp_path / "elsewhere.tar.gz")
    (folder / "tool-linux-amd64.tar.gz").symlink_to(tmp_path / "elsewhere.tar.gz")
    (folder / "notes.txt").write_text("mine")
    code, said = verify("--dir", str(folder), "--key", str(key_file(tmp_path, key)), where="dir")
    assert code == 1, said
    assert "FAIL tool-linux-amd64.tar.gz: is a symbolic link" in said and "FAIL notes.txt: is not listed" in said

    (folder / "notes.txt").unlink()
    (folder / "SHA256SUMS").write_bytes((folder / "SHA256SUMS").read_bytes().replace(b"\n", b"\r\n"))
    code, said = verify("--dir", str(folder), "--key", str(key_file(tmp_path, key)), where="dir")
    assert code == 1 and "FAIL SHA256SUMS.minisig" in said, said


def test_a_folder_given_the_wrong_tag_is_named(publish, forge, verify, tmp_path, minisign):
    key = minisign["unencrypted"]
    assert publish(**signed(key)).code == 0
    folder = _downloaded(forge, tmp_path)

    code, said = verify("--dir", str(folder), "--key", str(key_file(tmp_path, key)), "--tag", "v9.9.9", where="dir")

    assert code == 1 and "is the attestation of release v1.0.0, not of v9.9.9" in said, said


# -- the attestations verify with verifiers not written here --------------------------------------


def _pae(envelope: dict) -> bytes:
    payload = base64.b64decode(envelope["payload"])
    kind = envelope["payloadType"].encode()
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


def test_securesystemslib_verifies_the_minisign_signed_attestations(publish, forge, tmp_path, minisign):
    from securesystemslib.dsse import Envelope
    from securesystemslib.exceptions import VerificationError
    from securesystemslib.signer import SSlibKey

    key = minisign["unencrypted"]
    assert publish(**signed(key)).code == 0
    raw = base64.b64decode(key.public.splitlines()[-1])[10:]  # minisign's public key: "Ed", key id, Ed25519 key
    public = SSlibKey(key.key_id, "ed25519", "ed25519", {"public": raw.hex()})

    for name in ATTESTATIONS:
        envelope = Envelope.from_dict(json.loads(_stored_bytes(forge, name)))
        assert envelope.verify([public], 1) == {key.key_id: public}
        envelope.payload = envelope.payload.replace(b"tool-linux", b"tool-Linux")
        with pytest.raises(VerificationError):
            envelope.verify([public], 1)


@pytest.mark.parametrize("kind", ["ed25519", "rsa", "subkey"])
def test_sqv_and_gpg_verify_the_openpgp_signed_attestations(publish, forge, tmp_path, pgp, kind):
    from signing_keys import gpg_verifies, sqv_verifies

    key = pgp[kind]
    assert publish(**signed(key)).code == 0
    folder = tmp_path / "pae"
    folder.mkdir()
    for name in ATTESTATIONS:
        envelope = json.loads(_stored_bytes(forge, name))
        (folder / f"{name}.pae").write_bytes(_pae(envelope))
        (folder / f"{name}.sig").write_bytes(base64.b64decode(envelope["signatures"][0]["sig"]))
        assert sqv_verifies(folder, key, f"{name}.sig", f"{name}.pae").returncode == 0, name
        checked = gpg_verifies(folder, key, f"{name}.sig", f"{name}.pae")
        assert checked.returncode == 0 and "VALIDSIG" in checked.stdout, checked.stderr
        (folder / f"{name}.pae").write_bytes(_pae(envelope).replace(b"DSSEv1 ", b"DSSEv2 "))
        assert sqv_verifies(folder, key, f"{name}.sig", f"{name}.pae").returncode != 0


def _downloaded(forge, tmp_path: Path) -> Path:
    folder = tmp_path / "downloaded"
    folder.mkdir()
    download_release(forge, "gitflic", folder)
    return folder


def _readme_block(marker: str, language: str) -> str:
    readme = (Path(__file__).resolve().parent.parent / "docs" / "verify.md").read_text()
    return readme.split(f"<!-- {marker} -->\n```{language}\n", 1)[1].split("```", 1)[0]


def test_the_readme_s_securesystemslib_snippet_verifies_and_refuses_a_changed_envelope(
    publish, forge, tmp_path, minisign
):
    key = minisign["unencrypted"]
    assert publish(**signed(key)).code == 0
    folder = _downloaded(forge, tmp_path)
    (folder / "minisign.pub").write_text(key.public)
    snippet = _readme_block("securesystemslib", "python")

    def run() -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", snippet, "release.intoto.jsonl"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=60,
        )

    done = run()
    assert done.returncode == 0 and "release/v0.1 verified" in done.stdout, done.stdout + done.stderr
    envelope = json.loads((folder / "release.intoto.jsonl").read_text())
    envelope["payload"] = base64.b64encode(base64.b64decode(envelope["payload"]).replace(b"tool-", b"tool_")).decode()
    (folder / "release.intoto.jsonl").write_text(json.dumps(envelope))
    assert run().returncode != 0


def test_the_readme_s_sqv_commands_verify_an_openpgp_signed_attestation(publish, forge, tmp_path, pgp):
    key = pgp["ed25519"]
    assert publish(**signed(key)).code == 0
    folder = _downloaded(forge, tmp_path)
    (folder / "release-key.asc").write_text(key.public)

    done = subprocess.run(
        ["bash", "-euc", _readme_block("sqv", "sh")], cwd=folder, capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 0, done.stdout + done.stderr
    envelope = json.loads((folder / "release.intoto.jsonl").read_text())
    envelope["payload"] = base64.b64encode(base64.b64decode(envelope["payload"]).replace(b"tool-", b"tool_")).decode()
    (folder / "release.intoto.jsonl").write_text(json.dumps(envelope))
    changed = subprocess.run(
        ["bash", "-euc", _readme_block("sqv", "sh")], cwd=folder, capture_output=True, text=True, timeout=60
    )
    assert changed.returncode != 0


# -- a hostile forge, a hostile folder ---------------------------------------------------------------


def test_hostile_names_are_findings_shown_escaped_and_nothing_is_written_by_name(
    publish, forge, verify, tmp_path, minisign
):
    key = minisign["unencrypted"]
    assert publish(**signed(key)).code == 0
    for name in ("../escape.txt", "a/b.txt", "fake\nrelease v1.0.0 (x): verified.", "SHA256SUMS.minisig.minisig"):
        _add_by_hand(forge, name, b"planted")

    code, said = verify("--key", str(key_file(tmp_path, key)))

    assert code == 1, said
    assert "FAIL ../escape.txt: is not listed" in said and "FAIL a/b.txt: is not listed" in said
    assert "fake\\x0arelease" in said and "\nrelease v1.0.0 (x): verified." not in said
    assert not (tmp_path.parent / "escape.txt").exists()
    # Each is not in the checksums file, and was added after the release attestation was signed.
    assert said.rstrip().splitlines()[-1].endswith("NOT verified: 8 finding(s).")


def test_a_release_with_hundreds_of_extra_assets_is_read_and_each_named(publish, forge, verify, tmp_path, minisign):
    key = minisign["unencrypted"]
    assert publish(**signed(key)).code == 0
    for number in range(300):  # bounded: a release as large as a forge lets a test make in seconds
        _add_by_hand(forge, f"extra-{number:03}.bin", b"x" * number)

    code, said = verify("--key", str(key_file(tmp_path, key)))

    assert code == 1
    assert said.count(": is not listed in SHA256SUMS") == 300 and said.count(": is not listed in release.intoto") == 300


def test_a_checksums_file_signed_with_crlf_and_a_name_twice_is_named(publish, forge, verify, tmp_path, minisign):
    """Even signed by the right key, a checksums file sha256sum would read otherwise is a finding."""
    from release_action import signing

    key = minisign["unencrypted"]
    assert publish(**signed(key)).code == 0
    folder = _downloaded(forge, tmp_path)
    lines = (folder / "SHA256SUMS").read_text().splitlines(keepends=True)
    (folder / "SHA256SUMS").write_text("".join([lines[0].replace("\n", "\r\n"), *lines[1:], lines[1]]))
    signer = signing.open_signer(signing.SigningKey(key.secret, None, "minisign", "checksums"))
    signer.sign(folder / "SHA256SUMS", folder / "SHA256SUMS.minisig", tag="v1.0.0", name="SHA256SUMS")
    import os

    os.mkfifo(folder / "a-pipe")  # never read: reading it would wait for ever

    code, said = verify("--dir", str(folder), "--key", str(key_file(tmp_path, key)), where="dir")

    assert code == 1, said
    assert "FAIL SHA256SUMS: line 1 ends with a carriage return" in said
    assert f"FAIL SHA256SUMS: line {len(lines) + 1} lists" in said and "a second time" in said
    assert "FAIL a-pipe: is not a regular file" in said
    assert "FAIL SHA256SUMS.minisig: is not a signature" not in said  # the signature itself is the key's


#: Runs a command and prints its exit code and the peak memory (KiB) of the largest process it waited for.
PEAK_RSS = (
    "import resource, subprocess, sys; done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL);"
    " print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


@pytest.mark.parametrize("which", ["openpgp", "minisign"])
def test_verifying_a_large_file_streams_and_keeps_memory_flat(publish, forge, dist, tmp_path, pgp, minisign, which):
    """With a signature of its own (sign_files: all), so that the OpenPGP path keeps a copy on disk too."""
    import os

    key = pgp["bare"] if which == "openpgp" else minisign["unencrypted"]
    peaks = {}
    for tag, mib in (("v1.0.0", 1), ("v1.1.0", 96)):
        for old in dist.iterdir():
            old.unlink()
        with open(dist / "tool.bin", "wb") as handle:
            for _ in range(mib):
                handle.write(os.urandom(1 << 20))
        assert publish(tag_name=tag, sign_files="all", **signed(key)).code == 0
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                PEAK_RSS,
                sys.executable,
                "-m",
                "release_action",
                "verify",
                "--forge",
                "gitflic",
                "--api-url",
                forge.api_url("gitflic"),
                "--repository",
                REPOSITORY,
                "--tag",
                tag,
                "--key",
                str(key_file(tmp_path, key)),
            ],
            env={"PATH": os.environ["PATH"], "INPUT_TOKEN": TOKEN},
            capture_output=True,
            text=True,
            timeout=300,
        )
        code, peak = map(int, done.stdout.split())
        assert code == 0, done.stderr
        peaks[mib] = peak >> 10
    assert peaks[96] < peaks[1] + 24, f"peak MiB verifying 1 MiB and 96 MiB files: {peaks}"


def test_a_release_attestation_signed_by_the_key_that_lists_a_file_twice_is_named(
    publish, forge, verify, tmp_path, minisign
):
    """As a compromised pipeline holding the key could write it: the signature verifies, the list does not."""
    from release_action import envelopes, signing

    key = minisign["unencrypted"]
    assert publish(**signed(key)).code == 0
    folder = _downloaded(forge, tmp_path)
    envelope = envelopes.loads((folder / "release.intoto.jsonl").read_bytes())
    statement = json.loads(envelope.payload)
    statement["subject"].append({"name": "tool-windows-amd64.zip", "digest": {"sha256": "0" * 64}})
    payload = json.dumps(statement).encode()
    signer = signing.open_signer(signing.SigningKey(key.secret, None, "minisign", "checksums"))
    resigned = envelopes.Envelope(
        payload, envelopes.PAYLOAD_TYPE, key.key_id, signer.sign_bytes(envelopes.pae(envelopes.PAYLOAD_TYPE, payload))
    )
    (folder / "release.intoto.jsonl").write_bytes(envelopes.dumps(resigned))

    code, said = verify("--dir", str(folder), "--key", str(key_file(tmp_path, key)), where="dir")

    assert code == 1 and "FAIL release.intoto.jsonl: lists a file twice" in said, said


def test_a_download_that_never_ends_is_a_finding_not_a_hang(publish, forge, verify, tmp_path, minisign):
    """A web side that streams for ever: verify reads one byte past the listed size and names the file."""
    from release_action.sandbox.state import ENDLESS_BYTES, Fault

    key = minisign["unencrypted"]
    assert publish(forge="gitea", files="checksums.txt", **signed(key)).code == 0
    forge.inject(Fault("web_endless", "GET", "attachments/", times=1))
    code, said = verify("--key", str(key_file(tmp_path, key)), forge_name="gitea")
    assert code == 1 and "FAIL" in said, said
    assert 0 < forge.state.endless_sent < ENDLESS_BYTES // 8
