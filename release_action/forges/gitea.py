"""Gitea and Forgejo (self-hosted, Codeberg), and GitVerse (Sber): one API dialect, Gitea's.

Quirks absorbed here: a release is found by its tag, a draft too (Gitea's lookup
by tag reads drafts; where a forge's does not, drafts are paged in the list); a new
release is made as a draft and published last; a release is made only for a tag
that exists (Gitea would otherwise tag the default branch's head), unless
target_branch says where; an upload carries the name in the ``name`` query
parameter and the bytes in the part ``attachment``, and answers with the attachment
alone, its size and no hash, so checking a hash means downloading the stored copy
(by its uuid: a ``browser_download_url`` names the file, which an old copy and its
replacement share); assets are deleted one by one; errors are ``{message, url}``;
a server's size and type limits are settings of its ``app.ini``.

GitVerse speaks this dialect with differences of its own: see gitverse.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

import requests

from ..errors import ForgeError
from ..log import excerpt
from ..transport import describe_json_or_text, filename_problem, multipart
from . import Asset, CiToken, Forge, Release, ReleaseSpec, stored_size

#: A forge with more pages of drafts than this is not a forge, it is a loop.
MAX_PAGES = 1000
#: Gitea keeps an asset's name in a column of this many characters (xorm's default VARCHAR(255)).
MAX_NAME_CHARACTERS = 255
FULL_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
#: An address with nothing in it that a log, an output or a summary could take for more.
WEB_ADDRESS = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s<>\"'`\\\x00-\x1f\x7f]+")


class Explained(ForgeError):
    """A refusal whose sentence already says all (a missing tag, a missing repository)."""


class Gitea(Forge):
    name = "gitea"
    title = "Gitea"
    #: Every Gitea and Forgejo server is someone's own: the address must be given (or come from its CI).
    default_api_url = ""
    creates_drafts = True
    # Gitea's release table is unique on (repository, tag), drafts included.
    one_release_per_tag = True
    hashes_by_download = True
    #: Whether a draft is found by its tag (Gitea: GetReleaseByTag reads drafts too); if not, by the list.
    drafts_by_tag: ClassVar[bool] = True
    #: Whether the list answers 404 for a repository with no release (else a 404 means no repository).
    empty_list_is_404: ClassVar[bool] = False
    #: Whether a stored copy is fetched by its uuid (Gitea's /attachments/{uuid}) rather than by the
    #: browser_download_url the forge gives.
    fetches_by_uuid: ClassVar[bool] = True
    #: What the list of releases calls its page size, and the most a page may hold.
    page_size_parameter: ClassVar[str] = "limit"
    page_size: ClassVar[int] = 50
    #: Headers every request carries.
    request_headers: ClassVar[Mapping[str, str]] = {"Accept": "application/json"}

    def __init__(self, http, repository: str, *, job_token: bool = False):
        super().__init__(http, repository, job_token=job_token)
        self.http.session.headers.update(self.request_headers)

    # -- what the CI and URLs tell us ------------------------------------------

    @classmethod
    def runs_this_ci(cls, environ: Mapping[str, str]) -> bool:
        # Gitea's act_runner sets GITEA_ACTIONS; Forgejo's runner sets it and FORGEJO_ACTIONS.
        return environ.get("GITEA_ACTIONS") == "true" or environ.get("FORGEJO_ACTIONS") == "true"

    @classmethod
    def context_defaults(cls, environ: Mapping[str, str]) -> dict[str, str]:
        if not cls.runs_this_ci(environ):
            return {}
        defaults = actions_defaults(environ)
        api_url = _actions_api_url(environ)
        if api_url:
            defaults["api_url"] = api_url
        return defaults

    @classmethod
    def ci_token(cls, environ: Mapping[str, str]) -> CiToken | None:
        # The job's own token, where the workflow put it in the environment (it is a secret, not a variable).
        api_url = _actions_api_url(environ)
        if not (cls.runs_this_ci(environ) and api_url):
            return None
        variable = next((name for name in ("GITEA_TOKEN", "FORGEJO_TOKEN", "GITHUB_TOKEN") if environ.get(name)), "")
        return CiToken(variable, environ[variable], api_url) if variable else None

    #: Codeberg, the public Forgejo service.
    domain = "codeberg.org"

    @classmethod
    def serves(cls, api_url: str) -> bool:
        return api_url.lower().rstrip("/").endswith("/api/v1") or super().serves(api_url)

    @classmethod
    def authorization(cls, token: str) -> str:
        return f"token {token}"

    @classmethod
    def describe_error(cls, response: requests.Response) -> str:
        """Gitea's ``{message, url}`` (its 404 adds ``errors``): the message, else the text."""
        return describe_json_or_text(response)

    def asset_name_problem(self, name: str) -> str | None:
        return name_problem(name)

    def explain_refused_create(self, spec: ReleaseSpec, error: ForgeError) -> str:
        if isinstance(error, Explained):
            return str(error)
        if error.status == 404:
            return f"Repository {self.repository} was not found on {self.title}, or the token cannot see it ({error})"
        return super().explain_refused_create(spec, error)

    @contextlib.contextmanager
    def _changing(self, what: str) -> Iterator[None]:
        """A refused change names the rights it needs."""
        try:
            yield
        except ForgeError as error:
            if error.status not in (401, 403):
                raise
            raise ForgeError(
                f"{self.title} refused to {what}: the token needs write access to the repository's"
                f" releases ({self.rights}) ({error})",
                error.status,
            ) from None

    #: The rights a token needs, as this forge names them.
    rights: ClassVar[str] = (
        "a personal access token with the write:repository scope, or the Actions job token"
        " with permissions contents: write"
    )

    # -- releases ------------------------------------------------------------

    @property
    def _repo_path(self) -> str:
        owner, repo = self.repository.split("/", 1)
        return f"/repos/{quote(owner, safe='')}/{quote(repo, safe='')}"

    @property
    def _releases_path(self) -> str:
        return f"{self._repo_path}/releases"

    def find_releases(self, tag: str) -> list[Release]:
        try:
            return [self._release(self.http.call("GET", f"{self._releases_path}/tags/{quote(tag, safe='')}"), tag)]
        except ForgeError as error:
            if error.status != 404:
                raise
        # Not by its tag: a draft, where the forge shows drafts only in the list.
        return [] if self.drafts_by_tag else self._listed_draft(tag)

    def _listed_draft(self, tag: str) -> list[Release]:
        """The draft for ``tag`` in the list of drafts, read page by page until a page brings nothing new."""
        seen: set[str] = set()
        for page in range(1, MAX_PAGES + 1):
            items = self._list_page({"draft": "true", "page": page, self.page_size_parameter: self.page_size})
            if not isinstance(items, list):
                raise ForgeError(
                    f"{self.title} answered the list of releases with something that is not a list:"
                    f" {excerpt(str(items))}"
                )
            new = [item for item in items if isinstance(item, dict) and str(item.get("id")) not in seen]
            seen.update(str(item.get("id")) for item in new)
            if not new:
                break
            mine = [item for item in new if item.get("tag_name") == tag]
            if mine:
                return [self._release(mine[0], tag)]
        return []

    def _list_page(self, params: dict[str, Any]) -> Any:
        try:
            return self.http.call("GET", self._releases_path, params=params)
        except ForgeError as error:
            if error.status == 404 and self.empty_list_is_404:  # no release yet (and past the last page)
                return []
            if error.status == 404:
                raise Explained(
                    f"Repository {self.repository} was not found on {self.title}, or the token cannot see it ({error})",
                    404,
                ) from None
            raise

    def create_release(self, spec: ReleaseSpec) -> Release:
        # Always a draft first: watchers see the release only once its files are in place.
        body = {
            "tag_name": spec.tag,
            "name": spec.title or spec.tag,
            "body": spec.body or "",
            "draft": True,
            "prerelease": bool(spec.prerelease),
        }
        if spec.target_branch:
            body["target_commitish"] = spec.target_branch
        with self._changing(f"create release {spec.tag}"):
            answer = self.http.call("POST", self._releases_path, json=body, expect=(201, 200), retry=False)
        return self._release(answer, spec.tag)

    def check_new_release(self, spec: ReleaseSpec) -> None:
        """A new release for a tag that does not exist would make it from the default branch's head:
        without target_branch, the tag must exist."""
        if spec.target_branch:
            return
        try:
            self.http.call("GET", f"{self._repo_path}/tags/{quote(spec.tag, safe='')}")
        except ForgeError as error:
            if error.status == 404:
                self._list_page({"page": 1, self.page_size_parameter: 1})  # a missing repository says so here
                raise Explained(
                    f"Tag '{spec.tag}' was not found in {self.repository} on {self.title}; push it"
                    " first, or set target_branch to make it from a branch when the release is"
                    f" published ({error})",
                    404,
                ) from None
            raise

    def update_release(self, release: Release, spec: ReleaseSpec) -> Release:
        changes = spec.differences(release)
        fields = {
            "title": ("name", spec.title),
            "body": ("body", spec.body),
            "prerelease": ("prerelease", spec.prerelease),
        }
        body = {key: value for name, (key, value) in fields.items() if name in changes}
        with self._changing(f"update release {release.tag}"):
            return self._release(self.http.call("PATCH", f"{self._releases_path}/{release.id}", json=body), release.tag)

    def publish_release(self, release: Release) -> Release:
        with self._changing(f"publish release {release.tag}"):
            answer = self.http.call("PATCH", f"{self._releases_path}/{release.id}", json={"draft": False}, retry=False)
        return self._release(answer, release.tag)

    def delete_release(self, release: Release) -> None:
        with self._changing(f"delete the extra release {release.tag}"):
            self.http.call("DELETE", f"{self._releases_path}/{release.id}", expect=(204, 200, 404))

    def refresh(self, release: Release) -> Release:
        return self._release(self.http.call("GET", f"{self._releases_path}/{release.id}"), release.tag)

    # -- assets --------------------------------------------------------------

    def upload_asset(self, release: Release, name: str, readable: object, size: int) -> Release:
        path = f"{self._releases_path}/{release.id}/assets?{name_query(name)}"
        try:
            with self._changing(f"upload {name}"):
                answer = self.http.call(
                    "POST", path, expect=(201, 200), retry=False, **multipart([("attachment", (name, readable, size))])
                )
        except ForgeError as error:
            refused = self._refused_upload(name, size, error)
            if refused is None:
                raise
            raise ForgeError(refused, error.status) from None
        # The answer is the new asset alone: the release as known, plus it.
        return dataclasses.replace(release, assets=(*release.assets, self._asset(answer, release.tag)))

    def _refused_upload(self, name: str, size: int, error: ForgeError) -> str | None:
        """The sentence for an upload the server's limits refused, naming the setting to change, with
        the server's own words."""
        text = str(error).lower()
        if error.status == 413 or (error.status == 400 and ("too large" in text or "size" in text)):
            return f"{self.title} refused {name} ({size} bytes) as too large: {self._size_limit()} ({error})"
        if error.status in (400, 415, 422) and "type" in text:
            return f"{self.title} refused {name} for its file type (HTTP {error.status}): {self.type_limit}"
        return None

    #: What to change when the server refuses a file for its size (None: the app.ini setting of the
    #: server's version) or its type.
    size_limit: ClassVar[str | None] = None
    type_limit: ClassVar[str] = (
        "add the file's type to [repository.release] ALLOWED_TYPES in the server's app.ini,"
        " or publish it packed in an archive"
    )

    def _size_limit(self) -> str:
        if self.size_limit is not None:
            return self.size_limit
        # The version is asked only now: a refused upload is the one time a run needs it.
        return (
            f"raise {size_setting(self._server_version())} in the server's app.ini, and the limit of a reverse"
            " proxy in front of it (nginx: client_max_body_size) if that answered"
        )

    def _server_version(self) -> str | None:
        """What the server says its version is; None where it does not say (one attempt: the sentence
        it serves is already an error's)."""
        try:
            answer = self.http.call("GET", "/version", retry=False)
        except ForgeError:
            return None
        version = answer.get("version") if isinstance(answer, dict) else None
        return version if isinstance(version, str) else None

    def delete_assets(self, release: Release, assets: list[Asset]) -> None:
        # One request per asset. A repeated delete after a lost answer finds nothing: a 404, where older
        # Gitea answers a 500 (GetAttachmentByID); so before a retry, look whether the asset is gone.
        for asset in assets:
            path = f"{self._releases_path}/{release.id}/assets/{quote(asset.id, safe='')}"

            def gone(path: str = path) -> bool | None:
                try:
                    self.http.call("GET", path, retry=False)
                except ForgeError as error:
                    if error.status == 404:
                        return True
                    raise
                return None

            def delete(path: str = path, asset: Asset = asset) -> bool:
                response = self.http.send("DELETE", path, expect=(204, 200, 404))
                # A 404 to a first attempt is "already gone" only if the asset is no longer there.
                if response.status_code == 404 and gone(path) is None:
                    raise ForgeError(
                        f"{self.title} answered 404 to deleting {asset.name} from release {release.tag},"
                        " but still lists it; remove it in the web interface",
                        404,
                    )
                return True

            with self._changing(f"delete {asset.name}"):
                self.http.policy.call(delete, what=f"deleting {asset.name}", before_retry=gone)

    def download(self, asset: Asset) -> Iterator[bytes]:
        link = asset.ref or asset.url
        if not link:
            raise ForgeError(f"{self.title} listed {asset.name} without a download link, so it cannot be checked")
        return self.http.download(link, asset.name)

    def _file_link(self, data: dict) -> str:
        """The link to this very copy: Gitea serves every attachment at /attachments/{uuid}, where a
        release's browser_download_url names the file, and two copies of one name (an old one and its
        replacement) share it."""
        uuid = data.get("uuid")
        if not self.fetches_by_uuid or not isinstance(uuid, str) or not uuid:
            return ""
        return f"{self._web_url}/attachments/{quote(uuid, safe='')}"

    @property
    def credential_urls(self) -> list[str]:
        # A private repository's files are served on the web side, with the token.
        return [self.http.api_url, self._web_url]

    @property
    def repository_url(self) -> str:
        return f"{self._web_url}/{self.repository}"

    @property
    def _web_url(self) -> str:
        """The web address behind the API: HOST/api/v1 -> HOST (a server's web side and API share it)."""
        parts = urlsplit(self.http.api_url)
        return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/').removesuffix('/api/v1')}"

    def _page_link(self, value: Any, tag: str) -> str:
        """The release page's address: the forge's html_url where it is a plain http(s) address (it goes
        into logs and outputs), else the one made from the repository's."""
        if isinstance(value, str) and WEB_ADDRESS.fullmatch(value) and urlsplit(value).scheme in ("http", "https"):
            return value
        return f"{self.repository_url}/releases/tag/{quote(tag, safe='')}"

    # -- the forge's JSON -> our data ------------------------------------------

    def _release(self, data: Any, tag: str) -> Release:
        if not isinstance(data, dict) or not _whole_number(data.get("id")):
            raise ForgeError(f"{self.title} answered with something that is not a release: {excerpt(str(data))}")
        if data.get("tag_name") != tag:
            raise ForgeError(
                f"{self.title} answered with release {excerpt(str(data.get('tag_name')))} when asked for {tag}"
            )
        return Release(
            id=str(data["id"]),
            tag=tag,
            title=_text(data.get("name")),
            body=_text(data.get("body")),
            prerelease=data.get("prerelease") is True,
            url=self._page_link(data.get("html_url"), tag),
            assets=tuple(self._asset(item, tag) for item in data.get("assets") or []),
            draft=data.get("draft") is True,
        )

    def _asset(self, data: Any, tag: str) -> Asset:
        if not isinstance(data, dict) or not _whole_number(data.get("id")):
            # An asset no later run could tell from another, or delete.
            raise ForgeError(
                f"{self.title} listed an asset without a numeric id in release {tag}: {excerpt(str(data))}"
            )
        return Asset(
            id=str(data["id"]),
            name=_text(data.get("name")),
            size=stored_size(data.get("size")),
            url=_text(data.get("browser_download_url")),
            ref=self._file_link(data),
        )


def name_query(name: str) -> str:
    """An upload's query: the name percent-encoded whole (nothing is safe), so that Go's url.Query
    reads it back byte for byte: '+' would otherwise be a space, and ';' a separator it refuses."""
    return f"name={quote(name, safe='')}"


def name_problem(name: str) -> str | None:
    """Why Gitea would not keep a file under exactly this name, or None."""
    if len(name) > MAX_NAME_CHARACTERS:
        return f"Gitea keeps names of at most {MAX_NAME_CHARACTERS} characters"
    return filename_problem(name)


#: The app.ini settings that limit a release upload's size: Gitea 1.26 gave releases their own
#: (go-gitea/gitea#36697); before, attachments of every kind shared one.
SIZE_SETTING_SINCE_1_26 = "[repository.release] FILE_MAX_SIZE (in MiB)"
SIZE_SETTING_BEFORE_1_26 = "[attachment] MAX_SIZE (in MiB; 4 by default on older versions)"
#: A version as Gitea reports it ("1.26.0", "1.26.0+dev-12-gabc"), or as Forgejo does, the Gitea it
#: follows after "+gitea-" ("11.0.1+gitea-1.22.0"): Forgejo's own numbers are not Gitea's.
GITEA_VERSION = re.compile(r"v?1\.(\d+)(?:[.+-]|$)")


def size_setting(version: str | None) -> str:
    """The app.ini setting that limits a release upload on a server of ``version`` (None: unknown)."""
    found = GITEA_VERSION.match((version or "").strip().rpartition("+gitea-")[2])
    if found is None:
        return f"{SIZE_SETTING_SINCE_1_26} on Gitea 1.26 and later, or {SIZE_SETTING_BEFORE_1_26} before"
    return SIZE_SETTING_SINCE_1_26 if int(found[1]) >= 26 else SIZE_SETTING_BEFORE_1_26


def _actions_api_url(environ: Mapping[str, str]) -> str:
    """The API of the server running these Actions: its own GITHUB_API_URL, else its server's /api/v1."""
    server = (environ.get("FORGEJO_SERVER_URL") or environ.get("GITHUB_SERVER_URL") or "").rstrip("/")
    return environ.get("GITHUB_API_URL") or (f"{server}/api/v1" if server else "")


def actions_defaults(environ: Mapping[str, str]) -> dict[str, str]:
    """What GitHub-style CI (Gitea and Forgejo Actions, GitVerse CI) names: the repository."""
    repository = environ.get("FORGEJO_REPOSITORY") or environ.get("GITHUB_REPOSITORY") or ""
    return {"repository": repository} if repository else {}


def _whole_number(value: Any) -> bool:
    """Gitea's ids are int64s: a number, or its digits (never a bool, a float or a path)."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, str) and value.isascii() and value.isdigit())


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


FORGE = Gitea
