"""What a forge dialect of the sandbox is made of: the request a route sees (its token, its JSON
or multipart body, stored as it arrives) and the ForgeApi each dialect fills in. The server
routes to dialects; dialects know nothing of the server."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from email.message import Message
from io import BufferedIOBase
from pathlib import Path
from typing import Any, Protocol

from . import multipart
from .state import Abort, Fault, Project, Refusal, Reply, State, StoredFile, new_id


class Connection(Protocol):
    """The server's side of one request, as a route may use it."""

    path: str
    headers: Message
    #: What the route read, for the contract check: its JSON, and the multipart part names.
    sent_json: Any
    sent_fields: tuple[str, ...] | None
    #: Set when the rest of a refused body may still be on the wire.
    close_connection: bool

    @property
    def state(self) -> State: ...

    def read_body(self) -> bytes: ...

    def body_stream(self) -> BufferedIOBase: ...


class Request:
    """What a forge route sees: the path's parts, the caller's token, and the body."""

    def __init__(
        self,
        handler: Connection,
        query: dict[str, list[str]],
        fault: Fault | None,
        token: str,
        api: ForgeApi | None = None,
    ):
        self.handler = handler
        self.api = api
        self.token = token
        self.state = handler.state
        self.query = query
        self.fault = fault
        self.headers = handler.headers

    def param(self, name: str, default: str = "") -> str:
        return self.query.get(name, [default])[0]

    def json(self) -> Any:
        raw = self.handler.read_body()
        try:
            value = json.loads(raw or b"null")
        except ValueError:
            value = None
        self.handler.sent_json = value
        return value

    @property
    def content_length(self) -> int | None:
        value = self.headers.get("Content-Length")
        return int(value) if value and value.isdigit() else None

    def project(self, repository: str) -> Project:
        """The project on this request's forge, if its token may see it."""
        project = self.state.projects.get((self.api.name if self.api else "", repository))
        if project is None:
            raise Refusal(404, f"Project {repository} not found")
        if repository not in self.state.tokens.get(self.token, set()):
            raise Refusal(403, f"No access rights to project {repository}")
        return project

    def form(self, file_fields: set[str]) -> tuple[list[tuple[str, StoredFile]], dict[str, str]]:
        """Read a multipart body: stored files (with the field they came in) and the plain fields."""
        boundary = re.search(r'boundary="?([^";]+)"?', self.headers.get("Content-Type", ""))
        if boundary is None:
            raise Refusal(400, "expected a multipart/form-data body")
        if self.content_length is None:
            raise Refusal(411, "Content-Length is required")
        files: list[tuple[str, _FileWriter]] = []
        values: dict[str, bytearray] = {}
        api = self.api or ForgeApi
        sent: list[str] = []
        self.handler.sent_fields = ()

        def open_part(part: multipart.Part) -> Callable[[bytes], None]:
            if part.name in file_fields and part.filename is not None:
                if any(ord(ch) < 32 for ch in part.filename) or "\\" in part.filename:
                    raise Refusal(400, f"invalid file name {part.filename!r}")
                writer = _FileWriter(
                    self.state.storage, self.stored_name(part.filename), api.stored_hashes, fault=self.storage_fault()
                )
                files.append((part.name, writer))
                sent.append(part.name)
                self.handler.sent_fields = tuple(sent)
                return writer.write
            values[part.name or ""] = bytearray()  # text is decoded whole: a UTF-8 character may span pieces
            sent.append(part.name or "")
            self.handler.sent_fields = tuple(sent)
            return values[part.name or ""].extend

        stream = self.handler.body_stream()
        try:
            multipart.read(stream, self.content_length, boundary.group(1), open_part, api.multipart_rules)
        except (multipart.MultipartError, OSError, Refusal) as error:
            for _, writer in files:
                writer.discard()
            if isinstance(error, OSError):
                raise Abort from None
            self.handler.close_connection = True  # the rest of the body may still be on the wire
            if isinstance(error, Refusal):
                raise
            raise Refusal(error.status, error.detail) from None
        for _, writer in files:
            writer.finish()
        fields = {name: value.decode("utf-8", "replace") for name, value in values.items()}
        return [(name, writer.file) for name, writer in files], fields

    def storage_fault(self) -> str | None:
        if self.fault is not None and self.fault.action in ("corrupt", "wrong_size"):
            return self.fault.action
        return None

    def stored_name(self, name: str) -> str:
        """The name the forge keeps; a "misread_name" fault reads it as a Tomcat without UTF-8 does."""
        if self.fault is not None and self.fault.action == "misread_name":
            return name.encode("utf-8").decode("latin-1")
        return name


class _FileWriter:
    """Stores one uploaded file on disk, hashing as it goes; a "corrupt" fault flips its first byte, a
    "wrong_size" fault stores a stray byte after the last one (and hashes what arrived)."""

    def __init__(self, storage: Path, name: str, algorithms: tuple[str, ...], *, fault: str | None):
        file_id = new_id()
        self.path = storage / file_id
        self._handle = self.path.open("wb")
        self._hashes = {alg: hashlib.new(alg) for alg in algorithms}
        self._corrupt = fault == "corrupt"
        self._stray_byte = fault == "wrong_size"
        self._size = 0
        self.file = StoredFile(file_id, name, self.path, 0, {})

    def write(self, data: bytes) -> None:
        if self._corrupt and data:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
            self._corrupt = False
        self._handle.write(data)
        for hash_ in self._hashes.values():
            hash_.update(data)
        self._size += len(data)

    def finish(self) -> None:
        if self._corrupt:  # an empty file cannot have a byte flipped; give it one too many
            self.write(b"\0")
        if self._stray_byte:
            self._handle.write(b"\0")
            self._size += 1
        self._handle.close()
        self.file.size = self._size
        self.file.digests = {alg: hash_.hexdigest() for alg, hash_ in self._hashes.items()}

    def discard(self) -> None:
        self._handle.close()
        self.path.unlink(missing_ok=True)


Route = tuple[str, "re.Pattern[str]", Callable[..., Reply]]


class ForgeApi:
    """One forge's dialect in the sandbox: its routes, how it authenticates, how it words errors."""

    #: The forge's name in the contract check, and the path prefix its description leaves out.
    name = ""
    prefix = ""
    #: How the forge's server reads multipart uploads: "spring" or "go" (see multipart.py).
    multipart_rules = "spring"
    #: Hashes the forge computes of a stored file (SHA-256 at least: the tests compare it).
    stored_hashes: tuple[str, ...] = ("sha256",)

    def routes(self) -> list[Route]:
        raise NotImplementedError

    def token(self, headers) -> str | None:
        raise NotImplementedError

    def error(self, status: int, message: str, code: str | None = None) -> Reply:
        raise NotImplementedError

    #: Where the forge's API lives, routes or not: a request there that no route serves is still the
    #: forge's, and the contract check reports it.
    roots: tuple[str, ...] = ()

    def claims(self, path: str) -> bool:
        return any(pattern.match(path) for _, pattern, _ in self.routes())

    def web_routes(self) -> list[Route]:
        """Pages outside the API (a forge's file downloads): served, but not held to its description."""
        return []

    def admit(self, headers) -> Reply | None:
        """The answer to a request the forge refuses before reading it (a header it requires), or None."""
        return None
