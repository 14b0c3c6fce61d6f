"""A streaming multipart/form-data reader for the sandbox forge.

Uploads of any size pass through in 1 MiB pieces, so the sandbox's memory,
like the client's, does not grow with the file.
"""
from __future__ import annotations

from email.message import Message
from typing import BinaryIO, Callable
from urllib.parse import unquote

PIECE_BYTES = 1 << 20
MAX_HEADER_BYTES = 16 << 10


class MultipartError(ValueError):
    pass


class Part:
    """One form field: its name, its file name (for files) and its headers."""

    def __init__(self, raw_headers: bytes):
        self.headers: dict[str, str] = {}
        for line in raw_headers.decode("utf-8", "replace").split("\r\n"):
            key, _, value = line.partition(":")
            self.headers[key.strip().lower()] = value.strip()
        disposition = Message()
        disposition["content-disposition"] = self.headers.get("content-disposition", "")
        self.name = _param(disposition, "name")
        self.filename = _param(disposition, "filename")


def _param(message: Message, key: str) -> str | None:
    value = message.get_param(key, header="content-disposition")
    if value is None:
        return None
    if isinstance(value, tuple):  # RFC 2231 form
        value = value[2]
    return unquote(str(value))


def read(stream: BinaryIO, length: int, boundary: str, open_part: Callable[[Part], Callable[[bytes], None]]) -> None:
    """Read a multipart body of ``length`` bytes, handing each part's data to a writer.

    ``open_part`` receives each part's headers and returns a function that
    takes that part's data in pieces.
    """
    remaining = length
    delimiter = b"\r\n--" + boundary.encode("latin-1")
    # A leading CRLF makes the first boundary look like every later one.
    buffer = bytearray(b"\r\n")

    def fill() -> None:
        nonlocal remaining
        piece = stream.read(min(PIECE_BYTES, remaining)) if remaining else b""
        if not piece:
            raise MultipartError("the body ended before the closing boundary")
        remaining -= len(piece)
        buffer.extend(piece)

    def find(needle: bytes, limit: int) -> int:
        while (index := buffer.find(needle)) < 0:
            if len(buffer) > limit:
                raise MultipartError("a boundary or part header is missing")
            fill()
        return index

    del buffer[: find(delimiter, MAX_HEADER_BYTES) + len(delimiter)]
    while True:
        while len(buffer) < 2:
            fill()
        if buffer[:2] == b"--":
            break
        if buffer[:2] != b"\r\n":
            raise MultipartError("a boundary is not followed by CRLF")
        end = find(b"\r\n\r\n", MAX_HEADER_BYTES)
        write = open_part(Part(bytes(buffer[2:end])))
        del buffer[: end + 4]
        keep = len(delimiter) - 1
        while (index := buffer.find(delimiter)) < 0:
            if len(buffer) > keep:
                write(bytes(buffer[:-keep]))
                del buffer[:-keep]
            fill()
        write(bytes(buffer[:index]))
        del buffer[: index + len(delimiter)]
    # Whatever follows the closing boundary (an epilogue) is read and dropped.
    while remaining:
        piece = stream.read(min(PIECE_BYTES, remaining))
        if not piece:
            break
        remaining -= len(piece)
