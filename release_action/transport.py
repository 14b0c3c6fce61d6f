"""The HTTP conversation with a forge: one session, its auth, timeouts and error sentences.

Forge modules say *what* to ask; this module knows *how* a request is sent,
how a failed one is described, and which failures are worth another attempt.

Two promises hold here for every request, whichever path sends it, because
every request goes through the one session this module builds:

- **Where the credential goes** (``CredentialRule``): it is attached to a
  prepared request only when the origin that will be connected to, read alike
  by urllib3's parser and the standard library's (requests picks the
  connection by one, urllib3 makes it by the other), is one the forge declared
  when the run started; redirects are judged again, and never carry it elsewhere.
- **How long an answer may take** (``AnswerClock``): ``timeout_seconds`` bounds a
  whole answer, headers and body, from the last byte sent; a download's clock
  starts again with each piece. A forge that trickles its answer is a
  transient failure, like a reset.
"""

from __future__ import annotations

import contextlib
import email.utils
import functools
import io
import itertools
import json
import os
import re
import socket
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from urllib3.util import parse_url

from . import __version__
from .errors import ForgeError, TransientError
from .log import excerpt
from .retries import TRANSIENT_STATUSES, RetryPolicy

CONNECT_TIMEOUT_SECONDS = 15.0
#: The most a body is asked for at once: a file's reader hands out pieces of at most this
#: (artifacts.READ_BYTES), so memory stays flat whatever the file's size.
BODY_CHUNK_BYTES = 2 << 20
#: A download (SourceCraft's check of a stored file) is hashed in pieces of this size; smaller than an
#: upload's because it runs beside the other uploads, each with its own buffers.
DOWNLOAD_CHUNK_BYTES = 1 << 20
#: The most of an API answer read into memory: a release of thousands of files is well under it; an
#: answer past it is a forge gone wrong (or hostile), refused rather than held.
MAX_ANSWER_BYTES = 16 << 20
DEFAULT_PORTS = {"http": 80, "https": 443}

#: (scheme, host, port): where a connection goes.
Origin = tuple[str, str, int]


def origin(url: str) -> Origin | None:
    """Where a request for ``url`` connects, read as urllib3 reads it, or None for a URL that must never
    carry a credential: unparseable, not http(s), with user info, a backslash, or a host that is not
    plain ASCII. A prepared request's URL is ASCII: an IDN host is in its ``xn--`` form there, and
    only that very form, declared from api_url, matches it."""
    if "\\" in url or not url.isascii():
        return None
    try:
        parts = parse_url(url)
    except ValueError:  # urllib3's LocationParseError
        return None
    host = (parts.host or "").lower().removeprefix("[").removesuffix("]")  # an IPv6 literal, as urlsplit gives it
    if parts.scheme not in DEFAULT_PORTS or not host or parts.auth is not None or "%" in host:
        return None
    found = (parts.scheme, host, parts.port or DEFAULT_PORTS[parts.scheme])
    # requests picks the connection by the standard library's reading, urllib3 makes it by its own: the
    # credential goes only where both agree, so that no difference between them can ever send it astray.
    try:
        split = urlsplit(url)
        agreed = (split.scheme, (split.hostname or "").lower(), split.port or DEFAULT_PORTS.get(split.scheme))
    except ValueError:
        return None
    return found if agreed == found else None


class CredentialRule(requests.auth.AuthBase):
    """The one place a credential is attached to a request: only for an origin the forge declared.

    It sees every prepared request of the session (and each redirect, through ``_Session``), so no
    caller decides for itself where the token may go. Never shows the token in a repr."""

    def __init__(self, header_value: str, origins: Iterable[Origin] = ()):
        self.header_value = header_value
        self.origins = frozenset(origins)

    def admits(self, url: str) -> bool:
        return origin(url) in self.origins

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers.pop("Authorization", None)
        if self.admits(request.url or ""):
            request.headers["Authorization"] = self.header_value
        return request

    def __repr__(self) -> str:
        return f"CredentialRule(***, {sorted(self.origins)})"


def _without_credential(request: requests.PreparedRequest) -> requests.PreparedRequest:
    request.headers.pop("Authorization", None)
    return request


class _Session(requests.Session):
    def rebuild_auth(self, prepared_request: requests.PreparedRequest, response: requests.Response) -> None:
        """A redirect is judged by the same rule as the first request, and no ~/.netrc adds another credential."""
        prepared_request.headers.pop("Authorization", None)
        if isinstance(self.auth, CredentialRule):
            self.auth(prepared_request)


class AnswerClock(threading.local):
    """How long the answer being read on this thread may still take.

    ``timeout_seconds`` is armed by the first read after the last byte sent, and bounds every read
    that follows until the next send: a whole answer, headers and body, however slowly it trickles.
    A download starts it again for each piece (``lap``)."""

    seconds: float | None = None
    deadline: float | None = None

    def start(self, seconds: float) -> None:
        self.seconds, self.deadline = seconds, None

    def lap(self) -> None:
        self.deadline = None

    def remaining(self) -> float | None:
        if self.seconds is None:
            return None
        now = time.monotonic()
        if self.deadline is None:
            self.deadline = now + self.seconds
        return self.deadline - now


ANSWER_CLOCK = AnswerClock()


class _ClockedSocket:
    """A connection's socket whose reads stop at the answer's deadline (``AnswerClock``)."""

    def __init__(self, sock: socket.socket):
        self._sock = sock
        self._read_timeout = sock.gettimeout()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def settimeout(self, value: float | None) -> None:
        self._read_timeout = value
        self._sock.settimeout(value)

    def sendall(self, data: Any, *args: Any) -> None:
        ANSWER_CLOCK.lap()
        self._sock.settimeout(self._read_timeout)
        self._sock.sendall(data, *args)

    def send(self, data: Any, *args: Any) -> int:
        ANSWER_CLOCK.lap()
        self._sock.settimeout(self._read_timeout)
        return self._sock.send(data, *args)

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        remaining = ANSWER_CLOCK.remaining()
        if remaining is not None:
            if remaining <= 0:
                raise TimeoutError("the answer took longer than timeout_seconds")
            self._sock.settimeout(remaining if self._read_timeout is None else min(remaining, self._read_timeout))
        return self._sock.recv_into(buffer, nbytes, flags)

    def makefile(self, mode: str = "rb", buffering: int | None = None, **_: Any) -> io.BufferedReader:
        # http.client reads an answer through this; socket.SocketIO reads by our recv_into. Counted as
        # socket.makefile counts it, so the socket stays open while an answer is still being read.
        self._sock._io_refs += 1  # type: ignore[attr-defined]
        return io.BufferedReader(socket.SocketIO(self, "rb"), buffering or io.DEFAULT_BUFFER_SIZE)  # type: ignore[arg-type]


class _ClockedHTTPConnection(urllib3.connection.HTTPConnection):
    def connect(self) -> None:
        super().connect()
        self.sock = _ClockedSocket(self.sock)


class _ClockedHTTPSConnection(urllib3.connection.HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        self.sock = _ClockedSocket(self.sock)


class _ClockedHTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _ClockedHTTPConnection


class _ClockedHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _ClockedHTTPSConnection


_CLOCKED_POOLS = {"http": _ClockedHTTPPool, "https": _ClockedHTTPSPool}


class _ClockedAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter, its connections (direct or through a proxy) read by the answer clock."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _CLOCKED_POOLS

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kwargs)
        manager.pool_classes_by_scheme = _CLOCKED_POOLS
        return manager


#: Tomcat, which GitFlic very likely runs on, refuses a part whose header section is longer.
MAX_PART_HEADER_BYTES = 512
#: Characters that reorder how a name is shown ("txt.exe" read as "exe.txt").
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
#: An RFC 2047 encoded word: Spring and Tomcat decode it in a file name, so the name would change.
ENCODED_WORD = re.compile(r"=\?[^?]*\?[bBqQ]\?[^?]*\?=")


def quoted(value: str) -> str:
    """A header parameter value as an RFC 7230 quoted-string.

    Spring, Tomcat, Go and python-multipart all read ``\\"`` and ``\\\\`` back as the
    character itself; the browsers' ``%22`` is stored literally by every one of them.
    """
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def part_header(field: str, filename: str | None = None) -> bytes:
    """The header section of one multipart part, exactly as it is sent."""
    disposition = f"form-data; name={quoted(field)}"
    if filename is None:
        return f"Content-Disposition: {disposition}\r\n\r\n".encode()
    disposition += f"; filename={quoted(filename)}"
    return f"Content-Disposition: {disposition}\r\nContent-Type: application/octet-stream\r\n\r\n".encode()


def filename_problem(name: str) -> str | None:
    """Why a file of this name would not arrive on a real server under exactly this name, or None."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "it is not valid UTF-8"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        return "it contains a control character"
    if any(ch in BIDI_CONTROLS for ch in name):
        return "it contains a bidirectional control character, which shows the name in another order"
    if all(unicodedata.category(ch)[0] in "CZM" for ch in name):
        return "it has no visible character"
    if "\\" in name:
        return "it contains a backslash, which servers read as a path separator"
    if ENCODED_WORD.search(name):
        return "it contains '=?...?=', which Java servers decode as RFC 2047 and store under another name"
    if len(part_header("files", name)) > MAX_PART_HEADER_BYTES:
        return (
            "it is too long to carry in an upload"
            f" (servers such as Tomcat take at most {MAX_PART_HEADER_BYTES} bytes of part headers)"
        )
    return None


def multipart(fields: list[tuple[str, Any]]) -> dict[str, Any]:
    """``data=`` and ``headers=`` for a streamed multipart/form-data request.

    A field is ``(name, text)`` or ``(name, (filename, readable, length))``. Names go as
    raw UTF-8 in quoted strings, and the Content-Type says ``charset=utf-8`` so that a
    Tomcat on a non-UTF-8 JVM reads them (and text parts) as UTF-8 too.
    """
    boundary = os.urandom(16).hex()  # as random as a uuid4's, without importing uuid (and platform)
    pieces: list[bytes | tuple[Any, int]] = []
    for name, value in fields:
        pieces.append(f"--{boundary}\r\n".encode())
        if isinstance(value, tuple):
            filename, readable, length = value
            pieces += [part_header(name, filename), (readable, length), b"\r\n"]
        else:
            pieces += [part_header(name), value.encode("utf-8"), b"\r\n"]
    pieces.append(f"--{boundary}--\r\n".encode())
    content_type = f"multipart/form-data; boundary={boundary}; charset=utf-8"
    return {"data": MultipartBody(pieces), "headers": {"Content-Type": content_type}}


class MultipartBody:
    """A request body of fixed pieces and files read in large pieces, with a known length.

    requests sends it with ``Content-Length`` (not chunked) because it has a
    length, and pulls it piece by piece, so memory does not grow with the file.
    """

    def __init__(self, pieces: list[bytes | tuple[Any, int]]):
        self._pieces = pieces

    def __len__(self) -> int:
        return sum(piece[1] if isinstance(piece, tuple) else len(piece) for piece in self._pieces)

    def __iter__(self) -> Iterator[bytes]:
        for piece in self._pieces:
            if isinstance(piece, tuple):
                readable, _ = piece
                yield from iter(functools.partial(readable.read, BODY_CHUNK_BYTES), b"")
            else:
                yield piece


class Http:
    """Requests to one forge's API, with the retry policy applied to each call."""

    def __init__(
        self,
        api_url: str,
        *,
        authorization: str,
        forge_title: str,
        describe_error: Callable[[requests.Response], str],
        policy: RetryPolicy,
        timeout: float,
        ca_bundle: str | None = None,
        connections: int = 1,
    ):
        self.api_url = api_url.rstrip("/")
        self.forge_title = forge_title
        self.policy = policy
        self._describe_error = describe_error
        # A connection, TLS handshake included, within timeout_seconds too when that is shorter.
        self._timeout = (min(CONNECT_TIMEOUT_SECONDS, timeout), timeout)
        self._counter = itertools.count(1)
        self.calls = 0
        self.session = _Session()
        # One kept-alive connection per parallel upload, and one for the lookups between them.
        adapter = _ClockedAdapter(pool_connections=1, pool_maxsize=connections + 1)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.auth = self.credential = CredentialRule(authorization)
        self.session.headers["User-Agent"] = f"release-action/{__version__}"
        # Given with every request: requests lets REQUESTS_CA_BUNDLE override a session's own
        # setting, which would silently ignore ca_bundle. True still honours REQUESTS_CA_BUNDLE.
        self._verify: str | bool = ca_bundle or True

    def declare(self, urls: Iterable[str]) -> None:
        """The origins the credential may go to, declared once by the forge module as the run starts."""
        self.credential.origins = frozenset(filter(None, map(origin, urls)))

    def call(
        self,
        method: str,
        path: str,
        *,
        expect: tuple[int, ...] = (200,),
        retry: bool = True,
        **kwargs: Any,
    ) -> Any:
        """Send one API request and return its JSON answer (``None`` for an empty one).

        With ``retry`` the policy repeats it on transient failures; requests
        that are not safe to repeat blindly pass ``retry=False`` and are
        retried by their caller, which knows how to check what landed.
        """

        def attempt() -> Any:
            return self._decode(self.send(method, path, expect=expect, **kwargs), method, path)

        if not retry:
            return attempt()
        return self.policy.call(attempt, what=f"{method} {path}")

    def send(
        self, method: str, path: str, *, expect: tuple[int, ...], stream: bool = False, **kwargs: Any
    ) -> requests.Response:
        """One attempt: the response if its status is expected, else a ForgeError saying why. The answer
        is read whole (at most MAX_ANSWER_BYTES) unless ``stream``."""
        url = self.api_url + path
        self.calls = next(self._counter)
        with self._failures(url, f"{self.forge_title} did not answer {method} {path}"):
            response = self._request(method, url, stream=True, allow_redirects=False, **kwargs)
            if not stream or response.status_code not in expect:
                _read_whole(response, f"{self.forge_title}'s answer to {method} {path}")
        if response.status_code in expect:
            return response
        if response.is_redirect:
            raise ForgeError(
                f"{self.forge_title} redirected {method} {path} to {excerpt(response.headers.get('Location') or '')};"
                " set api_url to the API's real address (the token is not sent on redirects)",
                response.status_code,
            )
        sentence = f"{self.forge_title} answered HTTP {response.status_code} to {method} {path}"
        try:
            detail = self._describe_error(response)
        except RecursionError:  # JSON nested past what the parser takes: the forge's words are its text
            detail = excerpt(response.text)
        if detail:
            sentence += f": {detail}"
        if response.status_code in TRANSIENT_STATUSES:
            raise TransientError(sentence, response.status_code, _retry_after(response))
        raise ForgeError(sentence, response.status_code)

    def _request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        ANSWER_CLOCK.start(self._timeout[1])
        return self.session.request(method, url, timeout=self._timeout, verify=self._verify, **kwargs)

    @contextlib.contextmanager
    def _failures(self, url: str, transient: str) -> Iterator[None]:
        """requests' exceptions as the one sentence each is shown: ``transient`` for what may pass."""
        try:
            yield
        except requests.exceptions.SSLError:
            raise ForgeError(
                f"TLS verification of {urlsplit(url).netloc} failed; if the forge uses a private CA,"
                " set ca_bundle to its certificate file"
            ) from None
        except urllib3.exceptions.LocationValueError:  # a host no connection can be made to (an empty label)
            raise ForgeError(f"{transient}: an address that cannot be connected to") from None
        except (
            TimeoutError,
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
            urllib3.exceptions.HTTPError,
        ) as error:
            raise TransientError(f"{transient}: {_reason(error)}") from None
        except requests.RequestException as error:  # a link requests cannot follow (a redirect to nowhere, say)
            raise ForgeError(f"{transient}: {type(error).__name__}") from None

    def download(self, url: str, what: str) -> Iterator[bytes]:
        """Stream a file from a link the forge handed out, through the session: the credential goes
        with it only where ``CredentialRule`` says (the forge's own hosts; never a storage's presigned
        link, nor a link that points elsewhere)."""
        try:
            parts = urlsplit(url)
        except ValueError:  # a host urlsplit cannot read ([x]): said below, as requests says it
            parts = None
        if parts is not None and (parts.scheme not in ("http", "https") or not parts.netloc or not url.isprintable()):
            raise ForgeError(f"{self.forge_title} gave a download link for {what} that is not an http(s) address")
        try:
            requests.Request("GET", url).prepare()
        except (requests.RequestException, ValueError):
            # Not shown: a storage's presigned link is itself a credential for the file.
            raise ForgeError(
                f"{self.forge_title} gave a download link for {what} that cannot be read as an address"
            ) from None
        failed = f"Downloading {what} from {self.forge_title}'s storage failed"
        # A link that is not plain ASCII never carries the credential, whatever host it turns into.
        withheld = {} if url.isascii() else {"auth": _without_credential}
        with self._failures(url, failed):
            with self._request("GET", url, stream=True, allow_redirects=True, **withheld) as response:
                if response.status_code != 200:
                    error = TransientError if response.status_code in TRANSIENT_STATUSES else ForgeError
                    raise error(
                        f"Downloading {what} from {self.forge_title}'s storage answered HTTP {response.status_code}",
                        response.status_code,
                    )
                yield from _pieces(response)

    def fetch(self, path: str, what: str) -> Iterator[bytes]:
        """Stream a file the API itself serves, with the token (one attempt)."""
        response = self.send("GET", path, expect=(200,), stream=True)
        with self._failures(self.api_url, f"Downloading {what} from {self.forge_title} failed"):
            with response:
                yield from _pieces(response)

    def _decode(self, response: requests.Response, method: str, path: str) -> Any:
        if not response.content:
            return None
        try:
            return response.json()
        except (ValueError, RecursionError):
            # A cut or garbled answer: the request may or may not have been carried out.
            raise TransientError(
                f"{self.forge_title} answered {method} {path} with a body that is not JSON: {excerpt(response.text)}"
            ) from None


def _pieces(response: requests.Response) -> Iterator[bytes]:
    """A streamed body in pieces as stored, each with the whole timeout to arrive. Not decoded: a
    Content-Encoding would make other bytes than the file's (and a few KB on the wire gigabytes)."""
    for piece in response.raw.stream(DOWNLOAD_CHUNK_BYTES, decode_content=False):
        ANSWER_CLOCK.lap()
        yield piece


def _read_whole(response: requests.Response, what: str) -> None:
    """Read an answer into memory, as requests would, but no more than MAX_ANSWER_BYTES of it."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > MAX_ANSWER_BYTES:
        response.close()
        raise ForgeError(
            f"{what} is {int(declared)} bytes long, more than the {MAX_ANSWER_BYTES >> 20} MiB an API answer may be"
        )
    body = bytearray()
    for piece in response.iter_content(1 << 16):
        body += piece
        if len(body) > MAX_ANSWER_BYTES:
            response.close()
            raise ForgeError(f"{what} is longer than the {MAX_ANSWER_BYTES >> 20} MiB an API answer may be")
    # What requests itself does once it has read a body: .content, .json() and .text read this.
    response._content = bytes(body)
    response._content_consumed = True  # type: ignore[attr-defined]  # requests' own flag, not in its stubs


def _reason(error: Exception) -> str:
    if isinstance(error, (requests.Timeout, socket.timeout)) or "timed out" in str(error).lower():
        return "no answer in time"
    text = str(error).lower()
    for needle, reason in (
        ("refused", "connection refused"),
        ("reset", "connection reset"),
        ("aborted", "connection aborted"),
        ("broken pipe", "connection closed while sending"),
        ("remotedisconnected", "connection closed without an answer"),
        ("closed connection", "connection closed without an answer"),
        ("incomplete", "answer cut short"),
        ("name or service", "host name not found"),
        ("nodename", "host name not found"),
        ("resolve", "host name not found"),
    ):
        if needle in text:
            return reason
    return type(error).__name__


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def describe_json_or_text(response: requests.Response) -> str:
    """The forge's own words from an error answer: a JSON message field, else its text."""
    try:
        data = response.json()
    except ValueError:
        return excerpt(response.text)
    if isinstance(data, dict):
        for key in ("message", "error_description", "error", "detail", "title"):
            if isinstance(data.get(key), str) and data[key]:
                return excerpt(data[key])
    return excerpt(json.dumps(data, ensure_ascii=False))
