"""SourceCraft's release API, as documented, in the sandbox forge.

One release per tag; ``publish: false`` makes a draft; uploads take parts
``name`` and ``file`` and answer with the asset, its size a string; an
attachment's details carry a download link valid for a minute, served by the
sandbox's storage without a token; there is no way to delete an asset or a
release. What it answers is held to the vendor's own API description
(contract.py).
Every error is ``{error_code, message, request_id, details}``.
"""

from __future__ import annotations

import re
import time
from urllib.parse import unquote

from .api import ForgeApi, Request
from .state import Project, Refusal, Release, Reply, StoredFile, new_id

REPO = r"^/repos/(?P<org>[^/]+)/(?P<repo>[^/]+)/releases"
TAG = REPO + r"/tag/(?P<tag>[^/]+)"
LINK_SECONDS = 60
ERROR_CODES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "ALREADY_EXISTS",
    411: "LENGTH_REQUIRED",
    412: "FAILED_PRECONDITION",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


class SourceCraftApi(ForgeApi):
    name = "sourcecraft"
    roots = ("/repos/", "/releases/")
    #: SourceCraft very likely runs Go's net/http: mime.ParseMediaType and Part.FileName().
    multipart_rules = "go"

    def routes(self):
        return [
            ("GET", re.compile(REPO + "$"), list_releases),
            ("POST", re.compile(REPO + "$"), create_release),
            ("GET", re.compile(TAG + "$"), get_release),
            ("PATCH", re.compile(TAG + "$"), update_release),
            ("POST", re.compile(TAG + "/publish$"), publish_release),
            ("POST", re.compile(TAG + "/attachments$"), upload_attachment),
            ("GET", re.compile(TAG + r"/attachments/(?P<attachment_id>[^/]+)$"), get_attachment),
        ]

    def token(self, headers) -> str | None:
        scheme, _, token = (headers.get("Authorization") or "").partition(" ")
        return token.strip() if scheme == "Bearer" and token.strip() else None

    def error(self, status: int, message: str, code: str | None = None) -> Reply:
        code = code or ERROR_CODES.get(status, "UNKNOWN")
        # The description's details are a map of strings, whose keys depend on the error code.
        return Reply(
            status, {"error_code": code, "message": message, "request_id": new_id(), "details": {"status": str(status)}}
        )


def _project(request: Request, org: str, repo: str) -> Project:
    return request.project(f"{unquote(org)}/{unquote(repo)}")


def _release(project: Project, tag: str) -> Release:
    tag = unquote(tag)
    for release in project.releases:
        if release.tag == tag:
            return release
    raise Refusal(404, f"release with tag '{tag}' not found")


def _asset_json(stored: StoredFile) -> dict:
    return {
        "id": f"asset-{stored.id}",
        "name": stored.name,
        "link": f"/attachments/{stored.id}",
        "attachment": {
            "id": stored.id,
            "name": stored.name,
            "mime_type": "application/octet-stream",
            "file_type": "container",
            "size": str(stored.size),
        },
    }


def _release_json(project: Project, release: Release) -> dict:
    return {
        "id": release.id,
        "repo_id": project.repository,
        "author": {"slug": "sandbox-user"},
        "tag": release.tag,
        "hash": "0" * 40,
        "title": release.title,
        "release_notes": release.body,
        "status": "draft" if release.draft else "published",
        "assets": [_asset_json(f) for f in release.files],
        "is_latest": False,
        "is_pre_release": release.prerelease,
        "created_at": release.created_at,
        "updated_at": release.created_at,
    }


def create_release(request: Request, org: str, repo: str) -> Reply:
    body = request.json() or {}
    with request.state.lock:
        project = _project(request, org, repo)
        tag = body.get("tag") or ""
        branch = body.get("target_branch")
        if not tag:
            raise Refusal(400, "tag is required")
        if branch and tag in project.tags:
            raise Refusal(409, f"branch or tag '{tag}' already exists", code="BranchAlreadyExists")
        if not branch and tag not in project.tags:
            raise Refusal(404, f"tag '{tag}' not found; push it or give target_branch")
        if any(r.tag == tag for r in project.releases):
            raise Refusal(409, f"release with tag '{tag}' already exists")
        release = Release(
            id=new_id(),
            tag=tag,
            title=body.get("title") or tag,
            body=request.state.settings.stored_text(body.get("release_notes") or ""),
            prerelease=False,
            created_at=request.state.timestamp(),
            draft=not body.get("publish"),
            target_branch=branch,
        )
        if not release.draft and branch:
            project.tags.add(tag)
        project.releases.append(release)
        return Reply(request.state.settings.sourcecraft_create_status, _release_json(project, release))


def list_releases(request: Request, org: str, repo: str) -> Reply:
    with request.state.lock:
        project = _project(request, org, repo)
        try:
            size = max(1, min(int(request.param("page_size", "20")), 100))
            start = int(request.param("page_token", "0") or 0)
        except ValueError:
            raise Refusal(400, "page_size and page_token must be numbers") from None
        newest_first = sorted(project.releases, key=lambda r: r.created_at, reverse=True)
        page = newest_first[start : start + size]
        answer: dict[str, object] = {"releases": [_release_json(project, r) for r in page]}
        if start + size < len(newest_first):  # the description: no token on the last page
            answer["next_page_token"] = str(start + size)
        return Reply(200, answer)


def get_release(request: Request, org: str, repo: str, tag: str) -> Reply:
    with request.state.lock:
        project = _project(request, org, repo)
        return Reply(200, _release_json(project, _release(project, tag)))


def update_release(request: Request, org: str, repo: str, tag: str) -> Reply:
    body = request.json() or {}
    with request.state.lock:
        project = _project(request, org, repo)
        release = _release(project, tag)
        release.title = body.get("title", release.title)
        release.body = request.state.settings.stored_text(body.get("release_notes", release.body))
        return Reply(200, _release_json(project, release))


def publish_release(request: Request, org: str, repo: str, tag: str) -> Reply:
    with request.state.lock:
        project = _project(request, org, repo)
        release = _release(project, tag)
        if not release.draft:
            raise Refusal(412, "only draft releases may be published")
        release.draft = False
        if release.target_branch:
            project.tags.add(release.tag)  # the tag is made from the branch on publishing
        return Reply(200, _release_json(project, release))


def upload_attachment(request: Request, org: str, repo: str, tag: str) -> Reply:
    with request.state.lock:
        _release(_project(request, org, repo), tag)
    files, fields = request.form({"file"})
    if not files or not fields.get("name"):
        raise Refusal(400, "both parts 'name' and 'file' are required")
    ((_, stored),) = files
    stored.name = request.stored_name(fields["name"])
    with request.state.lock:
        release = _release(_project(request, org, repo), tag)
        release.files.append(stored)
        return Reply(201, _asset_json(stored))


def get_attachment(request: Request, org: str, repo: str, tag: str, attachment_id: str) -> Reply:
    with request.state.lock:
        release = _release(_project(request, org, repo), tag)
        stored = next((f for f in release.files if f.id == unquote(attachment_id)), None)
        if stored is None:
            raise Refusal(404, f"attachment {attachment_id} not found")
        expires = int(time.time()) + LINK_SECONDS
        return Reply(
            200,
            {
                **_asset_json(stored)["attachment"],
                "url": request.state.file_link(f"/_storage/{stored.id}?expires={expires}"),
            },
        )
