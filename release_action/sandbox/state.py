"""What the sandbox forge knows and how it is told to misbehave: projects, releases and stored
files, its settings and faults, the record of every exchange, and the answers routes give. Plain
data below the forge dialects and the server, which both read it."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
    "stale_answer",
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
    #: GitFlic's upload as a server that binds one file (``MultipartFile``, not a list) would take it: of
    #: several ``files`` parts it stores the first, drops the others, and answers 200 all the same.
    gitflic_first_file_only: bool = False
    #: GitFlic refusing a request that carries a Debian package with 415, whatever its declared type: the
    #: server sniffs the content, as self-hosted 4.5.0 was seen to. Nothing of that request is stored.
    gitflic_refuses_debs: bool = False
    #: GitFlic's delete as a server that binds one value of the list would take it: it removes the first
    #: file named and answers 200 all the same.
    gitflic_deletes_first_only: bool = False

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


def new_id() -> str:
    return str(uuid.uuid4())
