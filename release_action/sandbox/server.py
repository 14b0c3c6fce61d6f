"""The sandbox forge: a real HTTP server on loopback that speaks the forges' release APIs.

It keeps projects, tags, releases and stored files (on disk, with their
hashes), answers with the forge's own JSON, and can be told to misbehave:
error statuses with or without Retry-After, connections dropped before or in
the middle of a request body, answers lost after the work was done, slow or
cut answers, and corrupted storage. Tests, the demo and users rehearsing a
pipeline all use it; ``/_sandbox/...`` is its control panel.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import socket
import ssl
import struct
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import multipart

#: Fault actions, by when they strike. "corrupt" (a byte flipped) and "wrong_size" (a stray byte added,
#: the hashes still of what arrived) strike while the file is stored (Request.storage_fault).
BEFORE_BODY = {"reset", "reset_mid_body", "status", "redirect", "pause_mid_body"}
AFTER_WORK = {
    "lost_answer",
    "truncated",
    "garbage",
    "slow",
    "empty_answer",
    "echo_token",
    "hold_answer",
    "trickle",
    "deep_json",
}
#: How a download link in an answer can be written (Settings.download_links): on the forge's own origin;
#: on another origin (a storage, a CDN, or a hostile host); with a backslash that urlsplit reads as the
#: forge's host and urllib3 as the other's; with user info before the forge's own host; and not parseable.
LINK_FORMS = ("own", "foreign", "backslash", "userinfo", "unparseable")
#: Faults that strike the web side (downloads) rather than the API: a proxy's 404, a redirect.
WEB_FAULTS = {"web_not_found", "web_redirect", "web_endless"}
#: The most a "web_endless" fault sends before it gives up on a client that keeps reading.
ENDLESS_BYTES = 256 << 20
#: Fields of an answer where an "echo_token" fault puts the caller's token, as a forge that builds
#: links with the credential in them, or echoes it into any field, would.
ECHOED_FIELDS = ("link", "url", "hashSha256", "browser_download_url")


@dataclass
class Fault:
    """One misbehaviour, used on the next ``times`` API requests that match ``method`` and ``path``
    (WEB_FAULTS strike the web side instead: a download answered 404, as a proxy might, or redirected)."""

    action: str
    method: str = "*"
    path: str = ""
    times: int = 1
    status: int = 503
    retry_after: str | None = None
    seconds: float = 0.0
    #: Where a "redirect" fault sends the client.
    location: str = ""
    #: The forge's own words in a "status" fault's answer, and the form of that answer where a forge
    #: has several (GitFlic's "boot": Spring Boot's error JSON instead of problem JSON).
    message: str = ""
    code: str | None = None
    #: What happens while a "pause_mid_body" fault holds a request with half its body read (tests
    #: rewrite the file being uploaded there), or a "hold" fault holds one before it is served, or a
    #: "hold_answer" fault its answer, made and not yet sent (tests order other jobs' requests around
    #: them there); the request is then served as usual. A "hold" may instead name the fault that
    #: then strikes the request ("lost_answer", "reset"): a test replaying an ordering with lost answers.
    during: Callable[[], str | None] | None = field(default=None, repr=False, compare=False)
    #: Only requests with this token, where set: one job's, when several jobs each have their own.
    token: str | None = None

    def matches(self, method: str, path: str, token: str | None = None) -> bool:
        return (
            self.times > 0
            and self.method in ("*", method)
            and re.search(self.path, path) is not None
            and self.token in (None, token)
        )


#: nginx's answer to a body over its client_max_body_size.
PROXY_413 = (
    "<html>\r\n<head><title>413 Request Entity Too Large</title></head>\r\n<body>\r\n<center><h1>413 Request"
    " Entity Too Large</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)

#: What a request's JSON body was when none was read.
NOTHING = type("Nothing", (), {"__repr__": lambda self: "NOTHING", "__bool__": lambda self: False})()


@dataclass(frozen=True)
class Exchange:
    """One API request and the sandbox's answer, as the contract check reads them (contract.py)."""

    forge: str
    method: str
    #: The path without the forge's prefix (GitFlic's self-hosted ``/rest-api``).
    path: str
    query: dict[str, list[str]]
    content_type: str
    sent_bytes: int
    #: The JSON body the route read (NOTHING if it read none) and the multipart part names.
    sent_json: Any
    sent_fields: tuple[str, ...] | None
    #: None when no answer went out (a dropped connection).
    status: int | None
    body: Any
    #: The fault that struck this request, if any.
    fault: str | None
    #: The caller's User-Agent: the program's requests are held to the description, a test's pokes are not.
    client: str


@dataclass
class StoredFile:
    id: str
    name: str
    path: Path
    size: int
    digests: dict[str, str]


@dataclass
class Release:
    id: str
    tag: str
    title: str
    body: str
    prerelease: bool
    created_at: str
    draft: bool = False
    #: Where the tag is to be made from on publishing, if it did not exist.
    target_branch: str | None = None
    files: list[StoredFile] = field(default_factory=list)


@dataclass
class Project:
    repository: str
    tags: set[str] = field(default_factory=set)
    releases: list[Release] = field(default_factory=list)


@dataclass
class Settings:
    #: The most releases a list page holds, whatever size the client asks for.
    page_size_cap: int = 50
    #: Allow two releases for one tag (some forges do; the client must cope).
    allow_duplicate_tags: bool = False
    #: Latency added to every API request, in seconds.
    latency: float = 0.0
    #: How release bodies are stored: "keep" as sent, or "lf", CRLF and CR turned into LF as some
    #: forges' web forms and databases do.
    line_endings: str = "keep"
    #: SourceCraft's answer to a create: 200 in the vendor's API description, 201 in its pages.
    sourcecraft_create_status: int = 200
    #: Gitea's limits on an upload, set in its app.ini: the size (0: none), [attachment] MAX_SIZE before
    #: 1.26 and [repository.release] FILE_MAX_SIZE since, and [repository.release] ALLOWED_TYPES
    #: (suffixes; empty: any).
    attachment_max_bytes: int = 0
    allowed_types: list[str] = field(default_factory=list)
    #: What Gitea's GET /version reports: which of its settings limits an upload, and how it says so.
    gitea_version: str = "1.25.0"
    #: A reverse proxy in front of the forge refusing larger request bodies with its own 413 (0: none).
    proxy_max_body_bytes: int = 0
    #: Where the download links in answers point (LINK_FORMS): the forge's own address, or a hostile
    #: form that leads to the sandbox's other origin, which records any credential sent there.
    download_links: str = "own"

    def stored_text(self, text: str) -> str:
        """A release body as this forge keeps it."""
        if self.line_endings == "lf":
            return text.replace("\r\n", "\n").replace("\r", "\n")
        return text


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    file: Path | None = None


#: What a route returns when it has sent its answer itself.
ANSWERED = Reply(0)


class Abort(Exception):
    """Drop the connection without an answer."""


class Refusal(Exception):
    """A route's "no": answered in the forge's own error format (``code`` where it has codes)."""

    def __init__(self, status: int, message: str, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


class State:
    """Everything the sandbox forge knows, behind one lock."""

    def __init__(self, storage: Path, forges: tuple[str, ...] = ()):
        self.lock = threading.RLock()
        self.storage = storage
        #: Each forge's own projects, by (forge, repository): one owner/name on two forges is two
        #: repositories, as on the real ones (a release made on GitFlic is not on Gitea), each with the
        #: ids of its own dialect. A project added is added to every forge, with the same tags.
        self.forges = forges
        self.projects: dict[tuple[str, str], Project] = {}
        self.tokens: dict[str, set[str]] = {}
        #: Tokens of CI jobs: they may read a project, and each forge decides what they may change.
        self.job_tokens: set[str] = set()
        self.faults: list[Fault] = []
        self.settings = Settings()
        self.calls: list[tuple[str, str]] = []
        #: Every API request with its answer, for the contract check.
        self.exchanges: list[Exchange] = []
        #: Where the sandbox is reachable, for the links in its answers, and its other origin.
        self.public_url = ""
        self.foreign_url = ""
        #: Every request that carried an Authorization header, on either origin: (origin URL, header).
        self.credentials: list[tuple[str, str]] = []
        #: The paths asked of the other origin.
        self.foreign_paths: list[str] = []
        #: Bytes a "web_endless" fault sent before the client hung up.
        self.endless_sent = 0
        #: API requests being served now, and the most at once: what a client's parallelism looks like here.
        self.in_flight = 0
        self.max_in_flight = 0
        #: When the first API request arrived (time.time()), for start-up measurements.
        self.first_call_at: float | None = None
        #: Numbers of files, for forges that number them (Gitea's attachment ids): file id -> number.
        self.numbers: dict[str, int] = {}
        self._clock = 0

    def add_project(self, repository: str, tags: Iterable[str] = (), token: str | None = None) -> None:
        with self.lock:
            for forge in self.forges:
                self.projects.setdefault((forge, repository), Project(repository)).tags.update(tags)
            if token:
                self.tokens.setdefault(token, set()).add(repository)

    def timestamp(self) -> str:
        """Creation times that are strictly increasing, so "oldest" is never a tie."""
        with self.lock:
            self._clock += 1
            now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
            return f"{now}.{self._clock:06d}Z"

    def file_link(self, path: str) -> str:
        """A download link for ``path`` (from "/"), written as Settings.download_links says."""
        own, foreign = self.public_url, self.foreign_url
        form = self.settings.download_links
        if form == "foreign":
            return foreign + path
        if form == "backslash":
            return f"{foreign}\\@{urlsplit(own).netloc}{path}"
        if form == "userinfo":
            return f"{urlsplit(own).scheme}://someone@{urlsplit(own).netloc}{path}"
        if form == "unparseable":
            return f"{urlsplit(own).scheme}://[x]{path}"
        return own + path

    def take_fault(self, method: str, path: str, *, web: bool = False, token: str | None = None) -> Fault | None:
        """The next fault for an API request from ``token``'s holder, or with ``web`` for the web side (WEB_FAULTS)."""
        with self.lock:
            for fault in self.faults:
                if fault.matches(method, path, token) and (fault.action in WEB_FAULTS) == web:
                    fault.times -= 1
                    return fault
        return None

    def snapshot(self) -> dict:
        with self.lock:
            return {
                "projects": {
                    forge: {
                        name: {
                            "tags": sorted(project.tags),
                            "releases": [
                                {
                                    **{k: v for k, v in asdict(r).items() if k != "files"},
                                    "files": [{**asdict(f), "path": str(f.path)} for f in r.files],
                                }
                                for r in project.releases
                            ],
                        }
                        for (held_by, name), project in self.projects.items()
                        if held_by == forge
                    }
                    for forge in self.forges
                },
                "calls": [list(call) for call in self.calls],
                "first_call_at": self.first_call_at,
                "max_in_flight": self.max_in_flight,
                "settings": asdict(self.settings),
            }


class Request:
    """What a forge route sees: the path's parts, the caller's token, and the body."""

    def __init__(
        self,
        handler: _Handler,
        query: dict[str, list[str]],
        fault: Fault | None,
        token: str,
        api: ForgeApi | None = None,
    ):
        self.handler = handler
        self.api = api
        self.token = token
        self.state: State = handler.server.state
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

        self.handler._body_read = True
        try:
            multipart.read(self.handler.rfile, self.content_length, boundary.group(1), open_part, api.multipart_rules)
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


class _Prefixed(io.BufferedIOBase):
    """A request body's stream with its first bytes already read back in front."""

    def __init__(self, head: bytes, rest):
        self._head = head
        self._rest = rest

    def read(self, size: int | None = -1) -> bytes:
        size = -1 if size is None else size
        if not self._head:
            return self._rest.read(size)
        taken = self._head if size < 0 else self._head[:size]
        self._head = self._head[len(taken) :]
        return taken

    def close(self) -> None:  # the handler closes its stream when the client hangs up
        self._rest.close()


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


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, state: State, apis: list[ForgeApi], *, foreign: bool = False):
        super().__init__(address, _Handler)
        self.state = state
        self.apis = apis
        #: The other origin: it serves stored files to anyone, as a storage or a CDN would, and is where
        #: a hostile link leads; a credential that arrives here went where it must not.
        self.foreign = foreign
        #: Its own address, as a client reaches it.
        self.origin = ""

    def handle_error(self, request, client_address) -> None:
        # A client that gave up (timeout, retry) closes its end: ordinary here, not worth a traceback.
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # An answer goes out as its head, then its body: with Nagle's algorithm the body would wait for
    # the client's delayed ACK of the head, 40 ms on every request. Real servers (Tomcat, nginx) send
    # without that wait.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # the sandbox is quiet
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # -- the request's body -------------------------------------------------

    _body_read = False

    def read_body(self) -> bytes:
        if self._body_read:
            return b""
        self._body_read = True
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def drain_body(self) -> None:
        if not self._body_read:
            self._body_read = True
            remaining = int(self.headers.get("Content-Length") or 0)
            while remaining:
                piece = self.rfile.read(min(1 << 20, remaining))
                if not piece:
                    break
                remaining -= len(piece)

    # -- dispatch -----------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        self._body_read = False
        self.sent_json: Any = NOTHING
        self.sent_fields: tuple[str, ...] | None = None
        parts = urlsplit(self.path)
        path = parts.path
        state = self.server.state
        if self.headers.get("Authorization") is not None:
            with state.lock:
                state.credentials.append((self.server.origin, self.headers["Authorization"]))
        if self.server.foreign:
            with state.lock:
                state.foreign_paths.append(path)
            self.drain_body()
            return self._send(_foreign_file(state, method, path))
        try:
            if path.startswith(("/_sandbox/", "/_storage/")):
                return self._send(control(state, method, path, self))
            web = self._web(method, path, parts.query)
            if web is ANSWERED:
                return None
            if web is not None:
                return self._send(web)
            api = next((api for api in self.server.apis if api.claims(path)), None)
            if api is None:
                self.drain_body()
                reply = Reply(404, {"message": f"no such endpoint: {method} {path}"})
                owner = next((api for api in self.server.apis if path.startswith(api.roots)), None)
                if owner is not None:
                    self._record(owner, method, path, parts.query, reply, None)
                return self._send(reply)
            with state.lock:
                state.calls.append((method, path))
                state.first_call_at = state.first_call_at or time.time()
                latency = state.settings.latency
                state.in_flight += 1
                state.max_in_flight = max(state.max_in_flight, state.in_flight)
            try:
                self._serve_api(api, method, path, parts.query, latency)
            finally:
                with state.lock:
                    state.in_flight -= 1
        except Abort:
            self._drop()

    def _web(self, method: str, path: str, query: str) -> Reply | None:
        for api in self.server.apis:
            for route_method, pattern, handler in api.web_routes():
                match = pattern.match(path)
                if match and route_method == method:
                    fault = self.server.state.take_fault(method, path, web=True)
                    if fault is not None and fault.action == "web_redirect":
                        return Reply(302, None, {"Location": fault.location + self.path})
                    if fault is not None and fault.action == "web_endless":
                        self._endless()
                        return ANSWERED
                    if fault is not None:  # a proxy's "not found"
                        return Reply(404, "<html><body>404 Not Found</body></html>", {"Content-Type": "text/html"})
                    request = Request(self, parse_qs(query), None, api.token(self.headers) or "", api)
                    try:
                        return handler(request, **match.groupdict())
                    except Refusal as refusal:
                        return Reply(refusal.status, str(refusal))
        return None

    def _serve_api(self, api: ForgeApi, method: str, path: str, query: str, latency: float) -> None:
        state = self.server.state
        if latency:
            time.sleep(latency)
        limit = state.settings.proxy_max_body_bytes
        if limit and int(self.headers.get("Content-Length") or 0) > limit:
            # The proxy's own page: the forge never sees the request.
            self.drain_body()
            reply = Reply(413, PROXY_413, {"Content-Type": "text/html"})
            self._record(api, method, path, query, reply, Fault("proxy"))
            return self._send(reply)
        fault = state.take_fault(method, path, token=api.token(self.headers))
        if fault and fault.action == "hold":
            then = fault.during() if fault.during is not None else None
            fault = Fault(then) if then else None
        # Each exchange is recorded before its answer goes out: once the client has read it, the
        # exchange is there for the contract check.
        if fault and fault.action in BEFORE_BODY:
            try:
                early = self._strike_early(fault, api)
            except Abort:
                self._record(api, method, path, query, None, fault)
                raise
            if early is not None:
                self._record(api, method, path, query, early, fault)
                return self._send(early)
        reply = self._route(api, method, path, parse_qs(query), fault)
        self.drain_body()
        self._record(api, method, path, query, reply, fault)
        if fault and fault.action in AFTER_WORK:
            return self._strike_late(fault, reply, api)
        self._send(reply)

    def _record(
        self, api: ForgeApi, method: str, path: str, query: str, answer: Reply | None, fault: Fault | None
    ) -> None:
        exchange = Exchange(
            forge=api.name,
            method=method,
            path=path.removeprefix(api.prefix),
            query=parse_qs(query, keep_blank_values=True),
            content_type=self.headers.get("Content-Type", ""),
            sent_bytes=int(self.headers.get("Content-Length") or 0),
            sent_json=self.sent_json,
            sent_fields=self.sent_fields,
            status=answer.status if answer is not None else None,
            body=answer.body if answer is not None else None,
            fault=fault.action if fault else None,
            client=self.headers.get("User-Agent", ""),
        )
        with self.server.state.lock:
            self.server.state.exchanges.append(exchange)

    def _route(self, api: ForgeApi, method: str, path: str, query, fault: Fault | None) -> Reply:
        refused = api.admit(self.headers)
        if refused is not None:
            return refused
        token = api.token(self.headers)
        if token is None or token not in self.server.state.tokens:
            return api.error(401, "Unauthorized: the token is missing or unknown")
        allowed = [(m, match, f) for m, p, f in api.routes() if (match := p.match(path))]
        for route_method, match, handler in allowed:
            if route_method == method:
                request = Request(self, query, fault, token, api)
                try:
                    return handler(request, **match.groupdict())
                except Refusal as refusal:
                    return api.error(refusal.status, str(refusal), refusal.code)
        return api.error(405, f"{method} is not allowed on {path}")

    # -- faults -------------------------------------------------------------

    def _strike_early(self, fault: Fault, api: ForgeApi) -> Reply | None:
        if fault.action == "reset":
            raise Abort
        if fault.action == "reset_mid_body":
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length // 2)
            raise Abort
        if fault.action == "pause_mid_body":
            length = int(self.headers.get("Content-Length") or 0)
            head = self.rfile.read(length // 2)
            if fault.during is not None:
                fault.during()
            self.rfile = _Prefixed(head, self.rfile)
            self.close_connection = True  # the stream is this request's alone from here
            return None
        self.drain_body()
        if fault.action == "redirect":
            return Reply(307, None, {"Location": fault.location + self.path})
        reply = api.error(fault.status, fault.message or f"injected fault: HTTP {fault.status}", fault.code)
        if fault.retry_after is not None:
            reply.headers["Retry-After"] = fault.retry_after
        return reply

    def _strike_late(self, fault: Fault, reply: Reply, api: ForgeApi) -> None:
        if fault.action == "slow":  # the work is done; the answer comes late
            time.sleep(fault.seconds)
            return self._send(reply)
        if fault.action == "lost_answer":
            raise Abort
        if fault.action == "trickle":  # the work is done; the answer comes a byte at a time, for ``seconds``
            return self._trickle(reply, fault.seconds)
        if fault.action == "hold_answer":
            if fault.during is not None:
                fault.during()
            return self._send(reply)
        if fault.action == "empty_answer":  # the work is done; the answer says nothing of it
            return self._send(Reply(200))
        if fault.action == "echo_token":  # the work is done; the answer carries the caller's secret
            return self._send(Reply(reply.status, _echoed(reply.body, api.token(self.headers) or ""), reply.headers))
        if fault.action == "deep_json":  # JSON nested deeper than any parser's stack
            return self._send(Reply(200, "[" * 100_000 + "]" * 100_000, {"Content-Type": "application/json"}))
        if fault.action == "garbage":
            return self._send(Reply(200, "<html><body>502 Bad Gateway</body></html>", {"Content-Type": "text/html"}))
        # truncated: promise the whole answer, send half, hang up.
        payload = json.dumps(reply.body).encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload[: len(payload) // 2])
        raise Abort

    def _endless(self) -> None:
        """A download that never ends: a promise of 1 TiB, sent as fast as the client reads, until it hangs
        up or ENDLESS_BYTES went out (then the connection drops). What went out is counted."""
        self._head(200, {"Content-Type": "application/octet-stream"}, 1 << 40)
        piece = bytes(64 << 10)
        try:
            while self.server.state.endless_sent < ENDLESS_BYTES:
                self.wfile.write(piece)
                with self.server.state.lock:
                    self.server.state.endless_sent += len(piece)
        except OSError:
            pass
        self.close_connection = True

    def _trickle(self, reply: Reply, seconds: float) -> None:
        """Promise a long answer, send its head and then a byte every half second; hang up after ``seconds``
        (a bound, so that a client that never gives up does not keep a test waiting)."""
        payload = json.dumps(reply.body).encode().ljust(100_000)
        self._head(reply.status, {"Content-Type": "application/json"}, len(payload))
        ends = time.monotonic() + seconds
        for byte in payload:  # bounded by ``seconds``, and by the client hanging up (the write fails)
            if time.monotonic() > ends:
                break
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            time.sleep(0.5)
        raise Abort

    def _drop(self) -> None:
        """Hang up with a TCP reset, as a crashed proxy or a dead link would."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass

    # -- answers ------------------------------------------------------------

    def _send(self, reply: Reply) -> None:
        headers = dict(reply.headers)
        if reply.file is not None:
            try:
                handle = reply.file.open("rb")
            except FileNotFoundError:  # deleted since the route found it
                return self._send(Reply(404, {"message": "file not found"}))
            with handle:
                headers.setdefault("Content-Type", "application/octet-stream")
                self._head(reply.status, headers, os.fstat(handle.fileno()).st_size)
                self.connection.sendfile(handle)  # storage serves files without copying them through Python
            return
        if reply.body is None:
            payload = b""
        elif isinstance(reply.body, (bytes, str)):
            payload = reply.body.encode() if isinstance(reply.body, str) else reply.body
            headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        else:
            payload = json.dumps(reply.body, ensure_ascii=False).encode()
            headers.setdefault("Content-Type", "application/json")
        self._head(reply.status, headers, len(payload))
        self.wfile.write(payload)

    def _head(self, status: int, headers: dict[str, str], length: int) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(length))
        self.end_headers()


def _echoed(body: Any, token: str) -> Any:
    if isinstance(body, dict):
        return {
            key: f"{value}{'&' if '?' in value else '?'}access_token={token}"
            if key in ECHOED_FIELDS and isinstance(value, str)
            else _echoed(value, token)
            for key, value in body.items()
        }
    if isinstance(body, list):
        return [_echoed(item, token) for item in body]
    return body


def control(state: State, method: str, path: str, handler: _Handler) -> Reply:
    """The control panel: set up projects and faults, read what happened."""
    body = json.loads(handler.read_body() or b"{}") if method in ("POST", "PUT") else {}
    if path.startswith("/_storage/") and method == "GET":
        return _storage(state, path.removeprefix("/_storage/"), handler)
    if path == "/_sandbox/state" and method == "GET":
        return Reply(200, state.snapshot())
    if path == "/_sandbox/projects" and method == "POST":
        state.add_project(body["repository"], body.get("tags", []), body.get("token"))
        held = state.snapshot()["projects"]
        return Reply(200, {forge: projects[body["repository"]] for forge, projects in held.items()})
    if path == "/_sandbox/faults" and method == "POST":
        with state.lock:
            state.faults.extend(Fault(**fault) for fault in body.get("faults", []))
        return Reply(200, {"faults": len(state.faults)})
    if path == "/_sandbox/faults" and method == "DELETE":
        with state.lock:
            state.faults.clear()
        return Reply(200, {"faults": 0})
    if path == "/_sandbox/settings" and method == "POST":
        with state.lock:
            for key, value in body.items():
                if hasattr(state.settings, key):
                    setattr(state.settings, key, value)
        return Reply(200, asdict(state.settings))
    return Reply(404, {"message": f"no such control: {method} {path}"})


def _foreign_file(state: State, method: str, path: str) -> Reply:
    """The other origin's answer: any stored file whose id ends the path, to anyone (what a storage, a
    CDN or a hostile host that copied it serves); a backslash link arrives as /%5C@host:port/...."""
    file_id = path.rstrip("/").rpartition("/")[2]
    with state.lock:
        for project in state.projects.values():
            for release in project.releases:
                for stored in release.files:
                    if method == "GET" and stored.id == file_id:
                        return Reply(200, file=stored.path)
    return Reply(404, "<Error><Code>NoSuchKey</Code></Error>")


def _storage(state: State, file_id: str, handler: _Handler) -> Reply:
    """Object storage behind presigned links: no token, but the link expires."""
    query = parse_qs(urlsplit(handler.path).query)
    if float(query.get("expires", ["0"])[0]) < time.time():
        return Reply(403, "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>")
    with state.lock:
        for project in state.projects.values():
            for release in project.releases:
                for stored in release.files:
                    if stored.id == file_id:
                        return Reply(200, file=stored.path)
    return Reply(404, "<Error><Code>NoSuchKey</Code></Error>")


class Sandbox:
    """A running sandbox forge on 127.0.0.1, usable from Python and over HTTP."""

    def __init__(self, port: int = 0, storage: Path | None = None, tls: tuple[Path, Path] | None = None):
        """``tls`` is (certificate, key) in PEM files: the sandbox then speaks HTTPS."""
        from .gitea import GiteaApi, GitVerseApi
        from .gitflic import GitFlicApi
        from .sourcecraft import SourceCraftApi

        apis = [GitFlicApi(), SourceCraftApi(), GiteaApi(), GitVerseApi()]
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        if storage is None:
            self._tempdir = tempfile.TemporaryDirectory(prefix="forge-sandbox-")
            storage = Path(self._tempdir.name)
        self.state = State(storage, tuple(api.name for api in apis))
        self._server = _Server(("127.0.0.1", port), self.state, apis)
        self._foreign = _Server(("127.0.0.1", 0), self.state, apis, foreign=True)
        self._scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            for server in (self._server, self._foreign):
                server.socket = context.wrap_socket(server.socket, server_side=True)
            self._scheme = "https"
        self.state.public_url = self._server.origin = self.url
        self.state.foreign_url = self._foreign.origin = self._url(self._foreign)
        self._threads = [
            threading.Thread(target=server.serve_forever, name="sandbox", daemon=True)
            for server in (self._server, self._foreign)
        ]

    def _url(self, server: _Server) -> str:
        host, port = server.server_address[:2]
        assert isinstance(host, str), "an AF_INET server's address is (host, port)"
        return f"{self._scheme}://{host}:{port}"

    @property
    def url(self) -> str:
        return self._url(self._server)

    @property
    def foreign_url(self) -> str:
        """The sandbox's other origin, where hostile download links lead."""
        return self.state.foreign_url

    def api_url(self, forge: str) -> str:
        """The API base a client should use for ``forge`` (GitFlic looks self-hosted here, and GitVerse,
        whose API has a host of its own, lives under a path)."""
        return {
            "gitflic": self.url + "/rest-api",
            "sourcecraft": self.url,
            "gitea": self.url + "/api/v1",
            "gitverse": self.url + "/gitverse",
        }[forge]

    def start(self) -> Sandbox:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        for server in (self._server, self._foreign):
            server.shutdown()
            server.server_close()
        if self._tempdir is not None:
            self._tempdir.cleanup()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- conveniences for tests and the demo ----------------------------------

    def add_project(self, repository: str, tags: Iterable[str] = (), token: str | None = None) -> None:
        """A repository on every forge the sandbox speaks, each its own, with these tags to start with."""
        self.state.add_project(repository, list(tags), token)

    def add_job_token(self, repository: str, token: str) -> None:
        """A CI job's token for ``repository``: it reads like any token; what it may change is up to the forge."""
        self.state.add_project(repository, [], token)
        with self.state.lock:
            self.state.job_tokens.add(token)

    def inject(self, *faults: Fault) -> None:
        with self.state.lock:
            self.state.faults.extend(faults)

    def releases(self, repository: str, forge: str | None = None) -> list[Release]:
        """The releases of ``repository`` on ``forge``; with None, on every forge (a test that speaks one)."""
        with self.state.lock:
            return [
                release
                for (held_by, name), project in self.state.projects.items()
                if name == repository and forge in (None, held_by)
                for release in project.releases
            ]

    def tags(self, repository: str, forge: str) -> set[str]:
        with self.state.lock:
            return set(self.state.projects[(forge, repository)].tags)

    def calls(self) -> list[tuple[str, str]]:
        with self.state.lock:
            return list(self.state.calls)

    def asset_id(self, forge: str, stored: StoredFile) -> str:
        """What ``forge``'s API calls a stored file: the program's outputs give this id."""
        if forge == "sourcecraft":
            return f"asset-{stored.id}"
        if forge in ("gitea", "gitverse"):
            with self.state.lock:
                return str(self.state.numbers[stored.id])
        return stored.id

    def exchanges(self) -> list[Exchange]:
        with self.state.lock:
            return list(self.state.exchanges)


def new_id() -> str:
    return str(uuid.uuid4())
