"""The sandbox forge: a real HTTP server on loopback that speaks the forges' release APIs.

It keeps projects, tags, releases and stored files (on disk, with their
hashes), answers with the forge's own JSON, and can be told to misbehave:
error statuses with or without Retry-After, connections dropped before or in
the middle of a request body, answers lost after the work was done, slow or
cut answers, and corrupted storage. Tests, the demo and users rehearsing a
pipeline all use it; ``/_sandbox/...`` is its control panel.
"""

from __future__ import annotations

import io
import json
import os
import socket
import ssl
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BufferedIOBase
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .api import ForgeApi, Request
from .gitea import GiteaApi, GitVerseApi
from .gitflic import GitFlicApi
from .sourcecraft import SourceCraftApi
from .state import (
    AFTER_WORK,
    ANSWERED,
    BEFORE_BODY,
    ECHOED_FIELDS,
    ENDLESS_BYTES,
    NOTHING,
    Abort,
    Exchange,
    Fault,
    Refusal,
    Release,
    Reply,
    State,
    StoredFile,
)

#: nginx's answer to a body over its client_max_body_size.
PROXY_413 = (
    "<html>\r\n<head><title>413 Request Entity Too Large</title></head>\r\n<body>\r\n<center><h1>413 Request"
    " Entity Too Large</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


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

    def body_stream(self) -> BufferedIOBase:
        """The body, for a route that reads it as a stream (a multipart upload)."""
        self._body_read = True
        return self.rfile

    @property
    def state(self) -> State:
        return self.server.state

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
        if fault.action == "stale_answer":  # the work is done; the answer was drawn before the last file was listed
            return self._send(Reply(reply.status, _without_last_file(reply.body), reply.headers))
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


def _without_last_file(body: Any) -> Any:
    """A GitFlic release answer without the last file it lists (GitFlic lists them under attachmentFiles)."""
    if isinstance(body, dict) and body.get("attachmentFiles"):
        return {**body, "attachmentFiles": body["attachmentFiles"][:-1] or None}
    return body


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
