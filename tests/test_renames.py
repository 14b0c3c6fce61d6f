"""Renaming at upload: ``path#asset-name`` publishes a file under another name, on both forges."""

from __future__ import annotations

import pytest
from conftest import FORGE_NAMES, local_sha256, stored

FORGES = pytest.mark.parametrize("forge_name", FORGE_NAMES)


@pytest.fixture
def build(dist):
    (dist / "out").mkdir()
    (dist / "out" / "app").write_bytes(b"\x7fELF linux build")
    return dist


@FORGES
def test_a_file_is_published_under_the_name_after_the_hash(publish, forge, build, forge_name):
    run = publish(forge=forge_name, files="out/app#app-linux-amd64\n*.zip")

    assert run.code == 0, run.log
    assert stored(forge) == {
        "app-linux-amd64": [local_sha256(build / "out" / "app")],
        "tool-windows-amd64.zip": [local_sha256(build / "tool-windows-amd64.zip")],
    }
    assert run.statuses() == {"app-linux-amd64": "uploaded", "tool-windows-amd64.zip": "uploaded"}

    again = publish(forge=forge_name, files="out/app#app-linux-amd64\n*.zip")
    assert again.code == 0, again.log
    assert set(again.statuses().values()) == {"unchanged"}


@FORGES
def test_a_renamed_file_is_published_only_under_its_new_name(publish, forge, build, forge_name):
    run = publish(forge=forge_name, files="out/*, out/app # app-linux-amd64")

    assert run.code == 0, run.log
    assert sorted(stored(forge)) == ["app-linux-amd64"]


def test_an_escaped_hash_is_part_of_the_path(publish, forge, build):
    (build / "notes#1.txt").write_text("first notes\n")

    run = publish(files="notes\\#1.txt, notes\\#1.txt#notes-one.txt")

    assert run.code == 0, run.log
    assert stored(forge) == {"notes-one.txt": [local_sha256(build / "notes#1.txt")]}


def test_a_file_may_be_published_under_two_names(publish, forge, build):
    run = publish(files="out/app#app-latest\nout/app#app-1.0.0")

    assert run.code == 0, run.log
    assert stored(forge) == {name: [local_sha256(build / "out" / "app")] for name in ("app-latest", "app-1.0.0")}


@pytest.mark.parametrize(
    "files, words",
    [
        ("*#tool", ["'*#tool'", "exactly one", "matches 3"]),
        ("out/app#", ["'out/app#'", "path#name"]),
        ("out/app#bin/app", ["'out/app#bin/app'", "without '/'"]),
        ("*, !*.zip#x", ["'!*.zip#x'", "cannot rename"]),
        ("out/app#same.zip\n*.zip#same.zip", ["'same.zip'", "Two files"]),
        ("out/app#=?utf-8?Q?app?=", ["=?utf-8?Q?app?=", "rename it"]),
        ("nothing-here#app", ["'nothing-here#app'", "matched no file"]),
    ],
)
def test_a_rename_that_cannot_apply_is_an_input_error_before_any_request(publish, forge, build, files, words):
    run = publish(files=files)

    assert run.code == 2, run.log
    error = next(line for line in run.log.splitlines() if line.startswith("::error::"))
    for word in words:
        assert word in error
    assert forge.calls() == []


def test_a_dry_run_names_the_file_behind_a_new_name(publish, forge, build):
    run = publish(files="out/app#app-linux-amd64", dry_run="true")

    assert run.code == 0, run.log
    assert f"upload app-linux-amd64 (16 bytes, from {build / 'out' / 'app'})" in run.log
    assert forge.releases("acme/tool") == []
