"""The HTTP conversation with a forge: one session, its auth, timeouts and error sentences.

Forge modules say *what* to ask; this module knows *how* a request is sent,
how a failed one is described, and which failures are worth another attempt.
"""
from __future__ import annotations

import email.utils
import itertools
import json
import re
import time
import unicodedata
import uuid
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit

import requests

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


class TokenAuth(requests.auth.AuthBase):
    """Sets the forge's Authorization header; never shows the token in a repr."""

    def __init__(self, header_value: str):
        self.header_value = header_value

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = self.header_value
        return request

    def __repr__(self) -> str:
        return "TokenAuth(***)"


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
        return f"it is too long to carry in an upload (servers such as Tomcat take at most {MAX_PART_HEADER_BYTES} bytes of part headers)"
    return None


def multipart(fields: list[tuple[str, Any]]) -> dict[str, Any]:
    """``data=`` and ``headers=`` for a streamed multipart/form-data request.

    A field is ``(name, text)`` or ``(name, (filename, readable, length))``. Names go as
    raw UTF-8 in quoted strings, and the Content-Type says ``charset=utf-8`` so that a
    Tomcat on a non-UTF-8 JVM reads them (and text parts) as UTF-8 too.
    """
    boundary = uuid.uuid4().hex
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
                yield from iter(lambda: readable.read(BODY_CHUNK_BYTES), b"")
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
        self._timeout = (CONNECT_TIMEOUT_SECONDS, timeout)
        self._counter = itertools.count(1)
        self.calls = 0
        self.session = requests.Session()
        # One kept-alive connection per parallel upload, and one for the lookups between them.
        adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=connections + 1)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.auth = TokenAuth(authorization)
        self.session.headers["User-Agent"] = f"release-action/{__version__}"
        # Given with every request: requests lets REQUESTS_CA_BUNDLE override a session's own
        # setting, which would silently ignore ca_bundle. True still honours REQUESTS_CA_BUNDLE.
        self._verify: str | bool = ca_bundle or True

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

    def send(self, method: str, path: str, *, expect: tuple[int, ...], **kwargs: Any) -> requests.Response:
        """One attempt: the response if its status is expected, else a ForgeError saying why."""
        url = self.api_url + path
        self.calls = next(self._counter)
        try:
            response = self.session.request(
                method, url, timeout=self._timeout, allow_redirects=False, verify=self._verify, **kwargs
            )
        except requests.exceptions.SSLError:
            raise ForgeError(
                f"TLS verification of {urlsplit(url).netloc} failed; "
                "if the forge uses a private CA, set ca_bundle to its certificate file"
            ) from None
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as error:
            raise TransientError(f"{self.forge_title} did not answer {method} {path}: {_reason(error)}") from None
        if response.status_code in expect:
            return response
        if response.is_redirect:
            raise ForgeError(
                f"{self.forge_title} redirected {method} {path} to {response.headers.get('Location')}; "
                "set api_url to the API's real address (the token is not sent on redirects)",
                response.status_code,
            )
        sentence = f"{self.forge_title} answered HTTP {response.status_code} to {method} {path}"
        detail = self._describe_error(response)
        if detail:
            sentence += f": {detail}"
        if response.status_code in TRANSIENT_STATUSES:
            raise TransientError(sentence, response.status_code, _retry_after(response))
        raise ForgeError(sentence, response.status_code)

    def download(self, url: str, what: str, *, authorized: bool = False) -> Iterator[bytes]:
        """Stream a file from a link the forge handed out: presigned, without the token, or
        ``authorized``, with it (the forge's own web host; requests drops it on a redirect elsewhere)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ForgeError(f"{self.forge_title} gave a download link for {what} that is not an http(s) address")
        headers = {"User-Agent": self.session.headers["User-Agent"]}
        if authorized:
            headers["Authorization"] = self.session.auth.header_value
        try:
            with requests.get(
                url, stream=True, timeout=self._timeout, allow_redirects=True, verify=self._verify, headers=headers,
            ) as response:
                if response.status_code != 200:
                    error = TransientError if response.status_code in TRANSIENT_STATUSES else ForgeError
                    raise error(f"Downloading {what} from {self.forge_title}'s storage answered HTTP {response.status_code}",
                                response.status_code)
                yield from response.iter_content(DOWNLOAD_CHUNK_BYTES)
        except requests.exceptions.SSLError:
            raise ForgeError(f"TLS verification of {urlsplit(url).netloc} failed while downloading {what}") from None
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as error:
            raise TransientError(f"Downloading {what} from {self.forge_title}'s storage failed: {_reason(error)}") from None
        except requests.RequestException as error:  # a link requests cannot follow (a redirect to nowhere, say)
            raise ForgeError(f"Downloading {what} from {self.forge_title}'s storage failed: {type(error).__name__}") from None

    def fetch(self, path: str, what: str) -> Iterator[bytes]:
        """Stream a file the API itself serves, with the token (one attempt)."""
        response = self.send("GET", path, expect=(200,), stream=True)
        try:
            with response:
                yield from response.iter_content(DOWNLOAD_CHUNK_BYTES)
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as error:
            raise TransientError(f"Downloading {what} from {self.forge_title} failed: {_reason(error)}") from None

    def _decode(self, response: requests.Response, method: str, path: str) -> Any:
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            # A cut or garbled answer: the request may or may not have been carried out.
            raise TransientError(
                f"{self.forge_title} answered {method} {path} with a body that is not JSON: "
                f"{excerpt(response.text)}"
            ) from None


def _reason(error: Exception) -> str:
    if isinstance(error, requests.Timeout):
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
