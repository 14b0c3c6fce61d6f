"""What the rest of the program may ask of a forge, and the data it gets back.

Each forge is one module here (``gitflic``, ``sourcecraft``, ``gitea`` for Gitea
and Forgejo, and ``gitverse``, which speaks Gitea's dialect with differences);
it is the only place that knows that forge's URLs, field names, CI variables
and quirks.
"""

from __future__ import annotations

import abc
import dataclasses
import importlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlsplit

import requests

from .. import notes
from ..artifacts import digests_of
from ..errors import AssetGone, ForgeError, InputError
from ..log import Progress
from ..retries import RetryPolicy
from ..transport import Http, filename_problem

#: forge name -> module that defines it; modules are imported only when used. The order is the
#: order of detection: GitVerse's CI before Gitea's, whose runner it may share.
FORGES = {"gitflic": "gitflic", "sourcecraft": "sourcecraft", "gitverse": "gitverse", "gitea": "gitea"}
#: Other names users give a forge that speaks one of these dialects.
ALIASES = {"forgejo": "gitea", "codeberg": "gitea"}


def within(url: str, domain: str) -> bool:
    """Whether ``url``'s host is ``domain`` or one of its subdomains: the exact documented host, never a
    host that merely contains its name (gitverse-lab.corp is not GitVerse)."""
    try:
        host = (urlsplit(url.strip()).hostname or "").rstrip(".")
    except ValueError:
        return False
    return host == domain or host.endswith("." + domain)


@dataclass(frozen=True)
class CiToken:
    """A token the CI put in the job's environment, not given as input 'token': it belongs to the CI's
    own server, and goes nowhere else."""

    variable: str
    value: str = field(repr=False)
    #: The API of the server whose job it is.
    api_url: str


@dataclass(frozen=True)
class Asset:
    """A file stored in a release."""

    id: str
    name: str
    size: int
    url: str
    #: Hashes the forge reports for the stored bytes, by algorithm name (md5, sha1, sha256, sha512).
    digests: Mapping[str, str] = field(default_factory=dict)
    #: The forge's own handle for fetching the stored bytes, where that differs from ``id``.
    ref: str = ""


def stored_size(value: Any) -> int:
    """A size as a forge reports it: a whole number, or (SourceCraft, protobuf's JSON) an int64 in a
    decimal string. -1 for anything else (" 5", "5_0", 1.5, none), so that the size check fails
    rather than the reading, or a garbled size passing for a true one."""
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value, re.ASCII):
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return -1


@dataclass(frozen=True)
class Release:
    id: str
    tag: str
    title: str
    body: str
    prerelease: bool
    url: str
    assets: tuple[Asset, ...] = ()
    #: Hidden from watchers until published (forges that have drafts).
    draft: bool = False

    def assets_named(self, name: str) -> list[Asset]:
        return [asset for asset in self.assets if asset.name == name]


@dataclass(frozen=True)
class ReleaseSpec:
    """What the user asked the release to look like; ``None`` keeps what the forge has."""

    tag: str
    title: str | None
    body: str | None
    prerelease: bool | None
    #: Leave the release a draft instead of publishing it after the uploads.
    draft: bool = False
    #: Branch to create the tag from when it does not exist yet (forges that can).
    target_branch: str | None = None
    #: How ``body`` meets the body of a release that exists (``notes.MODES``).
    body_mode: str = "replace"

    def against(self, release: Release | None) -> ReleaseSpec:
        """This spec with the body the release should end with, given the release found (None: to be created)."""
        existing = release.body if release is not None else None
        return dataclasses.replace(self, body=notes.merge(self.body_mode, self.body, existing))

    def differences(self, release: Release) -> list[str]:
        """Names of the fields the existing release must change to match; a body is compared as a forge
        stores it, so one that turns CRLF into LF is not sent the same text on every run."""
        changed = {
            "title": self.title is not None and self.title != release.title,
            "body": self.body is not None and not notes.same_body(self.body, release.body),
            "prerelease": self.prerelease is not None and self.prerelease != release.prerelease,
        }
        return [name for name, differs in changed.items() if differs]


class Forge(abc.ABC):
    """One forge's release API. Methods that change something make a single attempt:
    the caller retries them, after checking whether an earlier attempt landed."""

    name: ClassVar[str]
    title: ClassVar[str]
    default_api_url: ClassVar[str]
    #: Whether the API can delete an asset; replacing a file needs it.
    can_delete_assets: ClassVar[bool] = True
    #: Whether a new release starts as a draft, published after its files are in place.
    creates_drafts: ClassVar[bool] = False
    #: Whether the forge itself refuses a second release for a tag (then racing jobs cannot make two).
    one_release_per_tag: ClassVar[bool] = False
    #: API requests a user may make in an hour, where the forge documents a limit.
    hourly_request_limit: ClassVar[int | None] = None
    #: The forge reports no hash of a stored file: checking one means downloading the file.
    hashes_by_download: ClassVar[bool] = False
    #: The most files one upload request may carry (``upload_assets``): one where the API is not known
    #: to take several.
    max_files_per_upload: ClassVar[int] = 1

    def __init__(self, http: Http, repository: str, *, job_token: bool = False):
        self.http = http
        self.repository = repository
        #: The token is the CI job's own, which may lack rights a personal token has.
        self.job_token = job_token
        self._downloaded: dict[tuple[str, str, str], Mapping[str, str]] = {}

    # -- what the forge's own CI and URLs tell us, before any request --------

    @classmethod
    @abc.abstractmethod
    def runs_this_ci(cls, environ: Mapping[str, str]) -> bool:
        """True inside this forge's own CI."""

    @classmethod
    @abc.abstractmethod
    def context_defaults(cls, environ: Mapping[str, str]) -> dict[str, str]:
        """Input defaults this forge's CI variables provide (token, repository, api_url)."""

    @classmethod
    def ci_token(cls, environ: Mapping[str, str]) -> CiToken | None:
        """The job's own token, where this forge's CI gives one."""
        return None

    #: The domain of the forge's public service: an api_url there is this forge's.
    domain: ClassVar[str] = ""

    @classmethod
    def serves(cls, api_url: str) -> bool:
        """True when ``api_url`` is recognisably this forge's."""
        return bool(cls.domain) and within(api_url, cls.domain)

    @classmethod
    @abc.abstractmethod
    def authorization(cls, token: str) -> str:
        """The Authorization header value for a token."""

    @classmethod
    @abc.abstractmethod
    def describe_error(cls, response: requests.Response) -> str:
        """The forge's own explanation from an error answer."""

    def fit(self, spec: ReleaseSpec) -> ReleaseSpec:
        """The request as this forge can carry it out; InputError for what it cannot do at all."""
        return spec

    def asset_name_problem(self, name: str) -> str | None:
        """Why a file of this name would not be stored under exactly this name, or None."""
        return filename_problem(name)

    def check_new_release(self, spec: ReleaseSpec) -> None:  # noqa: B027 - a hook most forges leave empty
        """The read-only checks a release for ``spec`` needs before it is created, made by a dry run
        too; an error saying why it cannot be made. Most forges can tell only by creating it."""

    def explain_refused_create(self, spec: ReleaseSpec, error: ForgeError) -> str:
        """The sentence for a create the forge refused while no release for the tag exists."""
        return (
            f"{self.title} would not create a release for tag '{spec.tag}' in {self.repository}; "
            f"check that the tag exists there ({error})"
        )

    # -- releases ------------------------------------------------------------

    @abc.abstractmethod
    def find_releases(self, tag: str) -> list[Release]:
        """Every release for ``tag``, oldest first (more than one only where the forge allows it)."""

    def find_release(self, tag: str) -> Release | None:
        """The release for ``tag``; where jobs raced and made several, the oldest, which all settle on."""
        releases = self.find_releases(tag)
        return releases[0] if releases else None

    @abc.abstractmethod
    def delete_release(self, release: Release) -> None:
        """Remove a release this run created in a race and lost."""

    @abc.abstractmethod
    def create_release(self, spec: ReleaseSpec) -> Release:
        """Create the release (one attempt)."""

    @abc.abstractmethod
    def update_release(self, release: Release, spec: ReleaseSpec) -> Release:
        """Change the fields ``spec`` sets."""

    @abc.abstractmethod
    def refresh(self, release: Release) -> Release:
        """The release as the forge has it now."""

    def publish_release(self, release: Release) -> Release:
        """Make a draft visible. Only forges whose releases can be drafts need this."""
        raise NotImplementedError(f"{self.title} has no draft releases to publish")

    # -- assets --------------------------------------------------------------

    @abc.abstractmethod
    def upload_asset(self, release: Release, name: str, readable: object, size: int) -> Release:
        """Upload one file (one attempt) and return the release as it is now, as far as the forge
        tells: with the new copy, and on forges that answer with the whole release, every other."""

    def upload_assets(self, release: Release, files: list[tuple[str, object, int]]) -> Release:
        """Upload files, each (name, readable, size), at most ``max_files_per_upload``, in one request
        (one attempt), and return the release as ``upload_asset`` does. The answer may lack some of the
        files: the caller looks for them in the release."""
        [(name, readable, size)] = files
        return self.upload_asset(release, name, readable, size)

    @abc.abstractmethod
    def delete_assets(self, release: Release, assets: list[Asset]) -> None:
        """Remove assets from the release."""

    def stored_digests(self, asset: Asset) -> Mapping[str, str]:
        """Hashes of what the forge stored, for verification: those it reports, or, on a forge that
        reports none, those of the stored file, downloaded.

        A download streams in pieces and runs on the upload's own thread, so it overlaps the
        other files' uploads and memory stays flat."""
        if not self.hashes_by_download:
            return asset.digests
        # Keyed by where the bytes come from too: a forge that gives two files one id gets no shared hash.
        key = (asset.id, asset.ref, asset.url)
        if key not in self._downloaded:
            try:
                self._downloaded[key] = self.http.policy.call(
                    lambda: digests_of(_with_progress(self.download(asset), asset)),
                    what=f"downloading {asset.name} to check it",
                )
            except ForgeError as error:
                if error.status not in (404, 410):
                    raise
                raise AssetGone(
                    f"A copy of {asset.name} was removed from the release while this run read it ({error}); run again",
                    error.status,
                ) from None
        return self._downloaded[key]

    @abc.abstractmethod
    def download(self, asset: Asset) -> Iterator[bytes]:
        """The stored bytes, streamed (one attempt: the caller retries the whole download)."""

    @property
    @abc.abstractmethod
    def repository_url(self) -> str:
        """The repository's web address."""

    @property
    def credential_urls(self) -> list[str]:
        """Where the token may go: the API's origin, and where a forge serves its files with the token,
        that origin too. Declared once as the run starts (transport.CredentialRule)."""
        return [self.http.api_url]


def _with_progress(pieces: Iterator[bytes], asset: Asset) -> Iterator[bytes]:
    """A download to check a stored copy says how far it is, as an upload does: a large file through a
    slow link is otherwise minutes of silence. It ends one byte past the size the forge lists: that
    byte is enough to tell the copy is wrong, and a link that never ends cannot keep the run."""
    progress = Progress(f"{asset.name} (downloaded to check it)", asset.size, "downloaded")
    room = max(asset.size, 0) + 1
    for piece in pieces:
        piece = piece[: room - progress.moved]
        yield piece
        progress.advance(progress.moved + len(piece))
        if progress.moved >= room:
            break
    progress.done()


def forge_class(name: str) -> type[Forge]:
    name = ALIASES.get(name, name)
    if name not in FORGES:
        raise InputError(
            f"Input 'forge' must be one of {', '.join(sorted(FORGES))} (or {', '.join(ALIASES)},"
            f" which are gitea), not '{name}'."
        )
    module = importlib.import_module(f".{FORGES[name]}", __name__)
    return module.FORGE


def all_forges() -> list[type[Forge]]:
    return [forge_class(name) for name in FORGES]


def connect(
    name: str,
    *,
    api_url: str,
    token: str,
    repository: str,
    policy: RetryPolicy,
    timeout: float,
    ca_bundle: str | None,
    connections: int = 1,
    job_token: bool = False,
) -> Forge:
    cls = forge_class(name)
    http = Http(
        api_url,
        authorization=cls.authorization(token),
        forge_title=cls.title,
        describe_error=cls.describe_error,
        policy=policy,
        timeout=timeout,
        ca_bundle=ca_bundle,
        connections=connections,
    )
    forge = cls(http, repository, job_token=job_token)
    http.declare(forge.credential_urls)
    return forge
