"""The file's pieces: sizes around the piece size go out whole and verified, through the sandbox, and
each piece stays intact while the next is read (the hashing thread may still be reading it)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from conftest import local_sha256, stored

from release_action.artifacts import BUFFERS, READ_BYTES, local_file

SIZES = [0, 1, READ_BYTES - 1, READ_BYTES, READ_BYTES + 1, BUFFERS * READ_BYTES, BUFFERS * READ_BYTES + 7]


def test_files_of_every_size_around_the_piece_size_are_stored_whole_and_verified(publish, forge, dist):
    for old in dist.iterdir():
        old.unlink()
    for size in SIZES:
        (dist / f"f{size}.bin").write_bytes(os.urandom(size))

    run = publish()

    assert run.code == 0, run.log
    assert stored(forge) == {path.name: [local_sha256(path)] for path in dist.iterdir()}
    assert {asset["name"]: asset["size"] for asset in run.json["assets"]} == {f"f{size}.bin": size for size in SIZES}


@pytest.mark.parametrize("size", SIZES)
def test_a_piece_is_intact_until_the_read_after_next_and_the_digest_is_of_what_was_read(tmp_path: Path, size: int):
    path = tmp_path / "f.bin"
    path.write_bytes(os.urandom(size))
    artifact = local_file(path, path.name)
    pieces: list[tuple[memoryview, bytes]] = []
    with artifact.open() as reader:
        for _ in range(size // READ_BYTES + 2):  # bounded: one read past the end
            piece = reader.read(READ_BYTES)
            # Every piece handed out since the turn came round to its buffer still holds its bytes.
            for earlier, copy in pieces[-(BUFFERS - 1) :]:
                assert bytes(earlier) == copy
            if not piece:
                break
            pieces.append((piece, bytes(piece)))
    assert b"".join(copy for _, copy in pieces) == path.read_bytes()
    assert artifact.digest() == hashlib.sha256(path.read_bytes()).hexdigest()
