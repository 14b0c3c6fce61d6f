"""GitFlic (gitflic.ru and self-hosted): the whole truth about its release API.

Quirks absorbed here: there is no release-by-tag endpoint, so the releases
are listed page by page (0-based, and the server may not honour the page size
asked for); an upload answers with the whole release, whose files carry size
and four hashes, but that answer is not relied on to list the new file (the
release is read again when it does not); the same name may be stored twice, so
replacing a file means deleting the older copy by its uuid; errors are Spring
problem JSON or plain text; the CI job token may lack release rights.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import requests

from ..errors import ForgeError, InputError, TransientError
from ..log import excerpt
from ..transport import describe_json_or_text, multipart
from . import Asset, CiToken, Forge, Release, ReleaseSpec, stored_size, within

PAGE_SIZE = 100
#: A project with more release pages than this is not a project, it is a loop.
MAX_PAGES = 1000
HASH_FIELDS = {"md5": "hashMd5", "sha1": "hashSha1", "sha256": "hashSha256", "sha512": "hashSha512"}
HEX_LENGTHS = {"md5": 32, "sha1": 40, "sha256": 64, "sha512": 128}
HEX = re.compile(r"[0-9a-fA-F]+")


class GitFlic(Forge):
    name = "gitflic"
    title = "GitFlic"
    default_api_url = "https://api.gitflic.ru"
    domain = "gitflic.ru"
    hourly_request_limit = 500  # gitflic.ru's documented limit; self-hosted servers set their own
    #: Its upload takes files in parts named ``files``, plural. Ten: Tomcat 10.1.42 refuses a request of
    #: more parts by default (maxPartCount; 50 since 10.1.43, and in Spring Boot).
    max_files_per_upload = 10

    @classmethod
    def runs_this_ci(cls, environ: Mapping[str, str]) -> bool:
        # GitFlic CI speaks GitLab's dialect; CI_SERVER_REST_URL is its own word.
        return bool(environ.get("CI_SERVER_REST_URL")) or within(environ.get("CI_SERVER_URL", ""), cls.domain)

    @classmethod
    def serves(cls, api_url: str) -> bool:
        # A self-hosted GitFlic serves its API under /rest-api.
        return api_url.lower().rstrip("/").endswith("/rest-api") or super().serves(api_url)

    @classmethod
    def ci_token(cls, environ: Mapping[str, str]) -> CiToken | None:
        if not (cls.runs_this_ci(environ) and environ.get("CI_JOB_TOKEN")):
            return None
        return CiToken(
            "CI_JOB_TOKEN", environ["CI_JOB_TOKEN"], environ.get("CI_SERVER_REST_URL") or cls.default_api_url
        )

    @classmethod
    def context_defaults(cls, environ: Mapping[str, str]) -> dict[str, str]:
        defaults = {}
        # The user's own secret, named for this forge: taken as input 'token' would be.
        if environ.get("GITFLIC_TOKEN"):
            defaults["token"] = environ["GITFLIC_TOKEN"]
        if cls.runs_this_ci(environ):
            if environ.get("CI_PROJECT_NAMESPACE") and environ.get("CI_PROJECT_NAME"):
                defaults["repository"] = f"{environ['CI_PROJECT_NAMESPACE']}/{environ['CI_PROJECT_NAME']}"
            if environ.get("CI_SERVER_REST_URL"):
                defaults["api_url"] = environ["CI_SERVER_REST_URL"]
        return defaults

    @classmethod
    def authorization(cls, token: str) -> str:
        return f"token {token}"

    @classmethod
    def describe_error(cls, response: requests.Response) -> str:
        """Spring's problem JSON (``{type, title, status, detail}``) or Boot's error JSON, else the text."""
        try:
            data = response.json()
        except ValueError:
            data = None
        if isinstance(data, dict) and data.get("detail") and data.get("title"):
            return f"{data['title']}: {data['detail']}"
        return describe_json_or_text(response)

    @contextlib.contextmanager
    def _changing(self, what: str) -> Iterator[None]:
        """Name the likely cause when the CI job token is refused a change: it may lack release rights.

        Seen on self-hosted 4.5.0: the job token lists releases, but a create fails with a 500 whose
        body may be Spring's plain error, problem JSON, or a bare "The given id must not be null". So
        any refusal of a change made with the job token (401, 403, a 5xx) names the way out; a 5xx
        stays retryable, and the sentence shown once the retries are spent carries the hint.
        """
        try:
            yield
        except ForgeError as error:
            refused = error.status in (401, 403) or (error.status or 0) >= 500
            if not (self.job_token and refused):
                raise
            hint = (
                f"GitFlic refused to {what} with the CI job token (CI_JOB_TOKEN), which may lack release rights;"
                f" set GITFLIC_TOKEN to a personal token with release rights ({error})"
            )
            if isinstance(error, TransientError):
                raise TransientError(hint, error.status, error.retry_after) from None
            raise ForgeError(hint, error.status) from None

    def fit(self, spec: ReleaseSpec) -> ReleaseSpec:
        if spec.draft:
            raise InputError("Input 'draft' cannot be true for GitFlic, which has no draft releases.")
        if spec.target_branch:
            raise InputError(
                "Input 'target_branch' is not supported by GitFlic, which makes releases only for existing tags;"
                " push the tag first."
            )
        return spec

    # -- releases ------------------------------------------------------------

    @property
    def _releases_path(self) -> str:
        owner, project = self.repository.split("/", 1)
        return f"/project/{quote(owner, safe='')}/{quote(project, safe='')}/release"

    def find_releases(self, tag: str) -> list[Release]:
        return [release for release in self._all_releases() if release.tag == tag]

    def _all_releases(self) -> list[Release]:
        """Every release of the project, oldest first (by creation time; those without one last, in list order)."""
        found: dict[str, tuple[datetime | None, Release]] = {}
        for page in range(MAX_PAGES):
            try:
                data = self.http.call("GET", self._releases_path, params={"page": page, "size": PAGE_SIZE})
            except ForgeError as error:
                if error.status == 404:
                    raise ForgeError(
                        f"Repository {self.repository} was not found on GitFlic, or the token cannot see it ({error})",
                        404,
                    ) from None
                raise
            listed = self._page(data)
            new = [(created, release) for created, release in listed.releases if release.id not in found]
            found.update((release.id, (created, release)) for created, release in new)
            # The end: an empty page, one that brings nothing new (a server that ignores the page asked
            # for), or the totals the server gave.
            if (
                not new
                or listed.number not in (None, page)
                or len(found) >= listed.total_elements
                or page + 1 >= listed.total_pages
            ):
                break
        order = sorted(found.values(), key=lambda pair: (pair[0] is None, pair[0] or datetime.min.replace(tzinfo=UTC)))
        return [release for _, release in order]

    def create_release(self, spec: ReleaseSpec) -> Release:
        body = {
            "title": spec.title or spec.tag,
            "description": spec.body or "",
            "tagName": spec.tag,
            "preRelease": bool(spec.prerelease),
        }
        with self._changing(f"create release {spec.tag}"):
            return self._release(self.http.call("POST", self._releases_path, json=body, retry=False))

    def update_release(self, release: Release, spec: ReleaseSpec) -> Release:
        body = {
            "title": spec.title if spec.title is not None else release.title,
            "description": spec.body if spec.body is not None else release.body,
            "tagName": release.tag,
            "preRelease": spec.prerelease if spec.prerelease is not None else release.prerelease,
        }
        with self._changing(f"update release {release.tag}"):
            return self._release(self.http.call("PUT", f"{self._releases_path}/{release.id}", json=body))

    def delete_release(self, release: Release) -> None:
        with self._changing(f"delete the extra release {release.tag}"):
            self.http.call("DELETE", f"{self._releases_path}/{release.id}", expect=(200, 204, 404))

    def refresh(self, release: Release) -> Release:
        return self._release(self.http.call("GET", f"{self._releases_path}/{release.id}"))

    # -- assets --------------------------------------------------------------

    def upload_asset(self, release: Release, name: str, readable: object, size: int) -> Release:
        return self.upload_assets(release, [(name, readable, size)])

    def upload_assets(self, release: Release, files: list[tuple[str, object, int]]) -> Release:
        with self._changing(f"upload {', '.join(name for name, _, _ in files)}"):
            answer = self.http.call(
                "POST",
                f"{self._releases_path}/{release.id}/file",
                retry=False,
                **multipart([("files", file) for file in files]),
            )
        # An answer that is not the release (empty, a proxy's page) is a lost answer: TransientError, and
        # the caller reads the release before another attempt. A read here would take another job's
        # newest copy for this one.
        return self._release(answer)

    def delete_assets(self, release: Release, assets: list[Asset]) -> None:
        """Remove the files with one request, which takes a list. The answer is believed only as far as the
        release it carries, or else the release read again, shows: a 404 is success for a repeated delete
        after a lost answer, but also what a server says that removed nothing; and a server that binds one
        value of a list removes one. What is still listed is removed a file a request, and what stays after
        that is an error."""
        left = self._delete(release, assets)
        if len(left) > 1:
            left = [asset for one in left for asset in self._delete(release, [one])]
        if left:  # the callers name the files
            raise ForgeError(f"GitFlic answered yes to removing {len(left)} of them, but still lists them")

    def _delete(self, release: Release, assets: list[Asset]) -> list[Asset]:
        """One delete request for ``assets``; those the release still lists after it."""
        if not assets:
            return []
        with self._changing("delete files"):
            answer = self.http.call(
                "DELETE",
                f"{self._releases_path}/{release.id}/file",
                json=[asset.id for asset in assets],
                expect=(200, 204, 404),
            )
        try:  # GitFlic answers with the release as it now is
            now = self._release(answer)
        except TransientError:  # a 404, an empty answer: what is left is read
            now = self.refresh(release)
        listed = {asset.id for asset in now.assets}
        return [asset for asset in assets if asset.id in listed]

    def download(self, asset: Asset) -> Iterator[bytes]:
        # The documented "download file" method, with the token: the web link may need a login.
        return self.http.fetch(asset.ref, asset.name)

    @property
    def repository_url(self) -> str:
        return f"{self._web_url}/project/{self.repository}"

    # -- the forge's JSON -> our data ------------------------------------------

    def _page(self, data: Any) -> Page:
        """One page of the release list. An empty page may leave ``_embedded`` out; totals it leaves
        out do not end the listing (an empty page does)."""
        data = data or {}
        embedded = data.get("_embedded") or {} if isinstance(data, dict) else None
        items = embedded.get("releaseTagModelList") or [] if isinstance(embedded, dict) else None
        page = data.get("page") or {} if isinstance(data, dict) else None
        if not isinstance(items, list) or not isinstance(page, dict):
            raise TransientError(
                f"GitFlic answered with something that is not a page of releases: {excerpt(str(data))}"
            )
        releases = [self._release(item) for item in items]  # each item is a dict from here

        def total(key: str) -> int | float:
            value = stored_size(page.get(key))
            return value if value > 0 else math.inf

        number = stored_size(page.get("number"))
        return Page(
            [(_instant(item.get("createdAt")), release) for item, release in zip(items, releases, strict=True)],
            number=number if number >= 0 else None,
            total_pages=total("totalPages"),
            total_elements=total("totalElements"),
        )

    def _release(self, data: Any) -> Release:
        if not isinstance(data, dict) or "id" not in data:
            # Transient: a proxy's page or a cut answer; the request may still have been carried out.
            raise TransientError(f"GitFlic answered with something that is not a release: {excerpt(str(data))}")
        return Release(
            id=str(data["id"]),
            tag=data.get("tagName") or "",
            title=data.get("title") or "",
            body=data.get("description") or "",
            prerelease=bool(data.get("preRelease")),
            url=f"{self.repository_url}/release/{data['id']}",
            assets=tuple(self._asset(item, str(data["id"])) for item in data.get("attachmentFiles") or []),
        )

    def _asset(self, data: Any, release_id: str) -> Asset:
        uuid = data.get("uuid") or data.get("id") if isinstance(data, dict) else None
        if not uuid:  # without it the file can be neither downloaded nor deleted
            raise ForgeError(f"GitFlic listed a file without a uuid in release {release_id}: {excerpt(str(data))}")
        uuid = str(uuid)
        return Asset(
            id=uuid,
            name=str(data.get("name") or ""),
            size=stored_size(data.get("size")),
            url=data.get("link") or "",
            digests=_digests(data),
            ref=f"{self._releases_path}/{quote(release_id, safe='')}/file/{quote(uuid, safe='')}",
        )

    @property
    def _web_url(self) -> str:
        """The web address behind the API: api.gitflic.ru -> gitflic.ru, HOST/rest-api -> HOST."""
        parts = urlsplit(self.http.api_url)
        host = parts.netloc.removeprefix("api.")
        path = parts.path.rstrip("/").removesuffix("/rest-api")
        return urlunsplit((parts.scheme, host, path, "", ""))


@dataclass(frozen=True)
class Page:
    """A page of the release list: its releases with their creation times, and what it says of the rest."""

    releases: list[tuple[datetime | None, Release]]
    number: int | None
    total_pages: int | float
    total_elements: int | float


def _instant(value: Any) -> datetime | None:
    """A creation time as Java prints it (0 to 9 digits of a second; Python reads at most 6)."""
    if not isinstance(value, str):
        return None
    text = re.sub(r"(\.\d{6})\d+", r"\1", value.strip()).replace("Z", "+00:00").replace("z", "+00:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _digests(data: dict) -> dict[str, str]:
    """The hashes a file answer reports; anything else in those fields (a forge that echoes what it
    was sent, say) is not a hash, and is left out rather than shown."""
    found = {}
    for algorithm, key in HASH_FIELDS.items():
        value = data.get(key)
        if isinstance(value, str) and HEX.fullmatch(value) and len(value) == HEX_LENGTHS[algorithm]:
            found[algorithm] = value.lower()
    return found


FORGE = GitFlic
