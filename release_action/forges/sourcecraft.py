"""SourceCraft (Yandex): the whole truth about its release API.

Quirks absorbed here: a release is found by its tag (one release per tag);
a new release is made as a draft and published last; an upload answers with
the asset alone, its size a string and no hash, so checking a hash means
downloading the stored file through a short-lived link; there is no way to
delete an asset; errors come as ``{error_code, message, request_id, details}``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from ..errors import ForgeError
from ..log import excerpt
from ..transport import describe_json_or_text, multipart
from . import Asset, Forge, Release, ReleaseSpec, stored_size

log = logging.getLogger(__name__)

#: The web interface behind the public API (the address of a release page there is a guess).
WEB_HOSTS = {"api.sourcecraft.tech": "https://sourcecraft.dev"}


class SourceCraft(Forge):
    name = "sourcecraft"
    title = "SourceCraft"
    default_api_url = "https://api.sourcecraft.tech"
    domain = "sourcecraft.tech"
    can_delete_assets = False
    creates_drafts = True
    one_release_per_tag = True  # documented: only one release can be associated with one tag
    # No hash in its answers: a stored file is downloaded through its short-lived link and hashed.
    hashes_by_download = True

    @classmethod
    def runs_this_ci(cls, environ: Mapping[str, str]) -> bool:
        return bool(environ.get("SOURCECRAFT_CI"))

    @classmethod
    def context_defaults(cls, environ: Mapping[str, str]) -> dict[str, str]:
        defaults = {}
        if environ.get("SOURCECRAFT_TOKEN"):
            defaults["token"] = environ["SOURCECRAFT_TOKEN"]
        if environ.get("SOURCECRAFT_COMMIT_REF", "").startswith("refs/tags/") and environ.get(
            "SOURCECRAFT_COMMIT_REF_NAME"
        ):
            defaults["tag_name"] = environ["SOURCECRAFT_COMMIT_REF_NAME"]
        # https://sourcecraft.dev/ORG/REPO(.git): the last two parts of the path.
        parts = urlsplit(environ.get("SOURCECRAFT_REPO_URL", "")).path.strip("/").removesuffix(".git").split("/")
        if len(parts) >= 2 and all(parts[-2:]):
            defaults["repository"] = "/".join(parts[-2:])
        return defaults

    @classmethod
    def authorization(cls, token: str) -> str:
        return f"Bearer {token}"

    @classmethod
    def describe_error(cls, response: requests.Response) -> str:
        """The message with error_code and request_id, which SourceCraft support asks for, and any details."""
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict) or not ({"error_code", "request_id"} & data.keys()):
            return describe_json_or_text(response)
        extra = [f"{key} {data[key]}" for key in ("error_code", "request_id") if data.get(key)]
        if data.get("details"):
            extra.append(f"details {json.dumps(data['details'], ensure_ascii=False)}")
        return f"{data.get('message') or 'no message'} ({', '.join(extra)})"

    def fit(self, spec: ReleaseSpec) -> ReleaseSpec:
        if spec.prerelease is not None:
            log.warning("SourceCraft's release API has no pre-release flag; input 'prerelease' is ignored.")
            return dataclasses.replace(spec, prerelease=None)
        return spec

    # -- releases ------------------------------------------------------------

    @property
    def _repo_path(self) -> str:
        org, repo = self.repository.split("/", 1)
        return f"/repos/{quote(org, safe='')}/{quote(repo, safe='')}"

    def _tag_path(self, tag: str) -> str:
        return f"{self._repo_path}/releases/tag/{quote(tag, safe='')}"

    def find_releases(self, tag: str) -> list[Release]:
        try:
            return [self._release(self.http.call("GET", self._tag_path(tag)), tag)]
        except ForgeError as error:
            if error.status == 404:
                return []
            raise

    def create_release(self, spec: ReleaseSpec) -> Release:
        # Always a draft first: watchers see the release only once its files are in place.
        body = {"tag": spec.tag, "title": spec.title or spec.tag, "release_notes": spec.body or "", "publish": False}
        if spec.target_branch:
            body["target_branch"] = spec.target_branch
        answer = self.http.call("POST", f"{self._repo_path}/releases", json=body, expect=(200, 201), retry=False)
        # Sent as a draft: a draft it is, unless the answer says otherwise.
        return self._release(answer, spec.tag, status="draft")

    def explain_refused_create(self, spec: ReleaseSpec, error: ForgeError) -> str:
        if spec.target_branch and error.status == 409:
            return (
                f"Tag '{spec.tag}' already exists in {self.repository}, and SourceCraft makes a release with"
                f" target_branch only for a new tag; leave target_branch out ({error})"
            )
        if error.status == 404:
            try:  # the documented list of releases tells a missing repository from a missing tag
                self.http.call("GET", f"{self._repo_path}/releases", params={"page_size": 1})
            except ForgeError as listing:
                if listing.status == 404:
                    return (
                        f"Repository {self.repository} was not found on SourceCraft, or the token cannot see it"
                        f" ({listing})"
                    )
                raise
            return (
                f"Tag '{spec.tag}' was not found in {self.repository}; push it first, or set target_branch to"
                f" make it from a branch when the release is published ({error})"
            )
        return super().explain_refused_create(spec, error)

    def update_release(self, release: Release, spec: ReleaseSpec) -> Release:
        changes = spec.differences(release)
        body = {
            field: value
            for name, field, value in (("title", "title", spec.title), ("body", "release_notes", spec.body))
            if name in changes
        }
        return self._release(self.http.call("PATCH", self._tag_path(release.tag), json=body), release.tag)

    def publish_release(self, release: Release) -> Release:
        answer = self.http.call("POST", f"{self._tag_path(release.tag)}/publish", expect=(200, 201), retry=False)
        return self._release(answer, release.tag) if answer else self.refresh(release)

    def delete_release(self, release: Release) -> None:
        # Never needed: one release per tag means no race leaves an extra one. And there is no API for it.
        raise ForgeError(f"SourceCraft has no API to delete a release; remove {release.tag} in its web interface.")

    def refresh(self, release: Release) -> Release:
        return self._release(self.http.call("GET", self._tag_path(release.tag)), release.tag)

    # -- assets --------------------------------------------------------------

    def upload_asset(self, release: Release, name: str, readable: object, size: int) -> Release:
        answer = self.http.call(
            "POST",
            f"{self._tag_path(release.tag)}/attachments",
            expect=(200, 201),
            retry=False,
            **multipart([("name", name), ("file", (name, readable, size))]),
        )
        # The answer is the new asset alone: the release as known, plus it.
        return dataclasses.replace(release, assets=(*release.assets, self._asset(answer, release.tag)))

    def delete_assets(self, release: Release, assets: list[Asset]) -> None:
        if assets:
            names = ", ".join(sorted({asset.name for asset in assets}))
            raise ForgeError(
                f"SourceCraft has no API to delete assets; remove {names} from release {release.tag}"
                " in its web interface, then run again."
            )

    def download(self, asset: Asset) -> Iterator[bytes]:
        if not asset.ref:
            raise ForgeError(f"SourceCraft listed {asset.name} without an attachment id, so it cannot be downloaded")
        return self.http.download(self._link(self.http.call("GET", asset.ref, retry=False), asset), asset.name)

    @property
    def repository_url(self) -> str:
        return f"{self._web_url}/{self.repository}"

    # -- the forge's JSON -> our data ------------------------------------------

    def _release(self, data: Any, tag: str, *, status: str = "published") -> Release:
        """The release for ``tag`` from SourceCraft's JSON; ``status`` where the answer leaves it out."""
        if not isinstance(data, dict) or not data.get("id"):
            raise ForgeError(f"SourceCraft answered with something that is not a release: {excerpt(str(data))}")
        if data.get("tag") and data["tag"] != tag:
            raise ForgeError(f"SourceCraft answered with release {excerpt(str(data['tag']))} when asked for {tag}")
        status = data.get("status") or status
        if status == "discarded":
            raise ForgeError(
                f"Release {tag} is discarded on SourceCraft; publish or delete it in its web interface, then run again."
            )
        return Release(
            id=str(data["id"]),
            tag=tag,
            title=data.get("title") or "",
            body=data.get("release_notes") or "",
            prerelease=bool(data.get("is_pre_release")),
            url=f"{self.repository_url}/releases/{quote(tag, safe='')}",
            assets=tuple(self._asset(item, tag) for item in data.get("assets") or []),
            draft=status == "draft",
        )

    def _asset(self, data: Any, tag: str) -> Asset:
        if not isinstance(data, dict):
            raise ForgeError(f"SourceCraft answered with something that is not an asset: {excerpt(str(data))}")
        found = data.get("attachment")
        attachment = found if isinstance(found, dict) else {}
        asset_id = data.get("id") or attachment.get("id")
        if not asset_id:  # an asset no later run could tell from another
            raise ForgeError(f"SourceCraft listed an asset without an id in release {tag}: {excerpt(str(data))}")
        return Asset(
            id=str(asset_id),
            name=data.get("name") or attachment.get("name") or "",
            size=stored_size(attachment.get("size")),
            url=data.get("link") or "",
            ref=f"{self._tag_path(tag)}/attachments/{quote(str(attachment['id']), safe='')}"
            if attachment.get("id")
            else "",
        )

    def _link(self, details: Any, asset: Asset) -> str:
        """The presigned download link in an attachment's details."""
        url = details.get("url") if isinstance(details, dict) else None
        if not isinstance(url, str) or not url:
            raise ForgeError(f"SourceCraft gave no download link for {asset.name}")
        return url

    @property
    def _web_url(self) -> str:
        parts = urlsplit(self.http.api_url)
        return WEB_HOSTS.get(parts.netloc, self.http.api_url)


FORGE = SourceCraft
