"""Immutable releases (`immutable: true`), on every forge: a published release is never changed. A file
that differs refuses before any change, a missing file is added, nothing is removed, the notes stay; and
the release, re-run or completed, still verifies."""

from __future__ import annotations

import hashlib

import pytest
from conftest import FORGE_NAMES, REPOSITORY, TOKEN, stored
from signing_keys import Key

from release_action.cli import main
from release_action.sandbox.state import StoredFile

FORGES = pytest.mark.parametrize("forge_name", FORGE_NAMES)


def immutable(key: Key, **inputs: str) -> dict[str, str]:
    return {
        "immutable": "true",
        "checksums": "SHA256SUMS",
        "signing_key": key.secret,
        "provenance": "true",
        "signing_passphrase": key.passphrase or "",
        **inputs,
    }


def verifies(forge, forge_name: str, key: Key, tmp_path, capsys) -> tuple[int, str]:
    public = tmp_path / "key.pub"
    public.write_text(key.public)
    capsys.readouterr()
    code = main(
        [
            "verify",
            "--forge",
            forge_name,
            "--api-url",
            forge.api_url(forge_name),
            "--repository",
            REPOSITORY,
            "--tag",
            "v1.0.0",
            "--key",
            str(public),
        ],
        {"INPUT_TOKEN": TOKEN},
    )
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@FORGES
def test_a_changed_file_refuses_before_any_change_and_names_it(publish, forge, dist, minisign, forge_name):
    key = minisign["unencrypted"]
    assert publish(forge=forge_name, **immutable(key)).code == 0
    before, kept = len(forge.calls()), stored(forge)
    (dist / "tool-windows-amd64.zip").write_bytes(b"a new build")

    run = publish(forge=forge_name, **immutable(key))

    assert run.code == 2, run.log
    assert "tool-windows-amd64.zip" in run.log and "immutable" in run.log and "Traceback" not in run.log
    assert {method for method, _ in forge.calls()[before:]} == {"GET"}
    assert stored(forge) == kept


@FORGES
def test_a_missing_file_is_added_nothing_is_removed_and_the_notes_stay(
    publish, forge, dist, minisign, forge_name, tmp_path, capsys
):
    """A first run that published one file and died; the retry adds the rest, and the attestations."""
    key = minisign["unencrypted"]
    first = publish(forge=forge_name, immutable="true", files="tool-linux-amd64.tar.gz", body="First.")
    assert first.code == 0, first.log
    [release] = forge.releases(REPOSITORY)
    assert not release.draft
    linux = stored(forge)["tool-linux-amd64.tar.gz"]

    run = publish(forge=forge_name, body="Second.", **immutable(key))

    assert run.code == 0, run.log
    statuses = run.statuses()
    assert statuses["tool-linux-amd64.tar.gz"] == "unchanged"
    assert (
        statuses["tool-windows-amd64.zip"] == statuses["SHA256SUMS"] == statuses["release.intoto.jsonl"] == "uploaded"
    )
    assert stored(forge)["tool-linux-amd64.tar.gz"] == linux
    [release] = forge.releases(REPOSITORY)
    assert release.body == "First." and not release.draft
    code, said = verifies(forge, forge_name, key, tmp_path, capsys)
    assert code == 0, said

    again = publish(forge=forge_name, body="Third.", **immutable(key))
    assert again.code == 0 and set(again.statuses().values()) == {"unchanged"}, again.log
    assert forge.releases(REPOSITORY)[0].body == "First."


@FORGES
def test_files_already_there_are_kept_and_a_file_the_release_lacks_cannot_change_its_signed_list(
    publish, forge, dist, minisign, forge_name
):
    key = minisign["unencrypted"]
    assert publish(forge=forge_name, **immutable(key)).code == 0
    [release] = forge.releases(REPOSITORY)
    path = forge.state.storage / "by-hand"
    path.write_bytes(b"added by hand")
    release.files.append(
        StoredFile(
            "byhand",
            "README.txt",
            path,
            13,
            {name: hashlib.new(name, b"added by hand").hexdigest() for name in ("md5", "sha1", "sha256")},
        )
    )
    kept = stored(forge)
    (dist / "tool-darwin-arm64.zip").write_bytes(b"a build the first run lacked")

    run = publish(forge=forge_name, **immutable(key))

    # The checksums file and the signed list would have to change: refused, and nothing changed.
    assert run.code == 2 and "SHA256SUMS" in run.log and "immutable" in run.log, run.log
    assert stored(forge) == kept
    removal = publish(forge=forge_name, remove_other_assets="true", **immutable(key))
    assert removal.code == 2 and "remove_other_assets" in removal.log
    assert stored(forge) == kept


@pytest.mark.parametrize("forge_name", ["sourcecraft", "gitea", "gitverse"])
def test_on_forges_with_drafts_everything_is_in_place_before_the_one_publish(publish, forge, minisign, forge_name):
    run = publish(forge=forge_name, **immutable(minisign["unencrypted"]))

    assert run.code == 0, run.log
    calls = [f"{method} {path}" for method, path in forge.calls()]
    changes = [i for i, call in enumerate(calls) if not call.startswith("GET")]
    uploads = [
        i
        for i, call in enumerate(calls)
        if call.startswith("POST")
        and "/releases" in call
        and call.rstrip("/").rsplit("/", 1)[-1] in ("attachments", "assets")
    ]
    assert len(uploads) == 7, calls  # three files, the provenance, the checksums, its signature, the release list
    assert changes[-1] > max(uploads)  # the publish request comes last
    [release] = forge.releases(REPOSITORY)
    assert not release.draft
