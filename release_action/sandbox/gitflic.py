"""GitFlic's release API, as documented, in the sandbox forge.

Served at the root and under ``/rest-api`` (the self-hosted form). Errors
come as plain text for 401 and as Spring's problem JSON
``{type, title, status, detail}`` otherwise, as GitFlic has been seen to answer.
"""

from __future__ import annotations

import math
import re
from http import HTTPStatus

from .api import ForgeApi, Request
from .state import Project, Refusal, Release, Reply, StoredFile, new_id

HASH_FIELDS = {"md5": "hashMd5", "sha1": "hashSha1", "sha256": "hashSha256", "sha512": "hashSha512"}
PROJECT = r"^(?:/rest-api)?/project/(?P<owner>[^/]+)/(?P<name>[^/]+)/release"


class GitFlicApi(ForgeApi):
    name = "gitflic"
    prefix = "/rest-api"
    roots = ("/project/", "/rest-api/")
    #: GitFlic very likely runs Spring Boot on Tomcat: Spring's file names, Tomcat's 512-byte part headers.
    multipart_rules = "spring"
    #: The four a GitFlic file answer carries.
    stored_hashes = tuple(HASH_FIELDS)

    def routes(self):
        def route(method: str, tail: str, handler):
            return (method, re.compile(PROJECT + tail + "$"), handler)

        return [
            route("GET", "", list_releases),
            route("POST", "", create_release),
            route("GET", "/latest", latest_release),
            route("GET", "/(?P<release_id>[^/]+)", get_release),
            route("PUT", "/(?P<release_id>[^/]+)", edit_release),
            route("DELETE", "/(?P<release_id>[^/]+)", delete_release),
            route("POST", "/(?P<release_id>[^/]+)/file", add_files),
            route("DELETE", "/(?P<release_id>[^/]+)/file", delete_files),
            route("GET", "/(?P<release_id>[^/]+)/file/(?P<file_id>[^/]+)", download_file),
        ]

    def token(self, headers) -> str | None:
        scheme, _, token = (headers.get("Authorization") or "").partition(" ")
        return token.strip() if scheme.lower() == "token" and token.strip() else None

    def error(self, status: int, message: str, code: str | None = None) -> Reply:
        if status == 401:
            return Reply(401, message)
        if code == BOOT_ERROR:  # Spring Boot's own error page, as JSON: the message is all it says
            return Reply(
                status,
                {
                    "timestamp": "2026-01-01T00:00:00.000+00:00",
                    "status": status,
                    "error": HTTPStatus(status).phrase,
                    "message": message,
                    "path": "/",
                },
            )
        # Spring's problem JSON (RFC 9457), the usual GitFlic error body.
        title = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
        return Reply(
            status,
            {"type": "about:blank", "title": title, "status": status, "detail": message},
            {"Content-Type": "application/problem+json"},
        )


#: Errors answered in Spring Boot's default form rather than problem JSON.
BOOT_ERROR = "boot"


def _project(request: Request, owner: str, name: str) -> Project:
    return request.project(f"{owner}/{name}")


def _changeable(request: Request, owner: str, name: str) -> Project:
    """The project, for a request that changes it. Seen on self-hosted 4.5.0: the CI job token reads
    releases, but every change fails in the server, with a 500 that names no cause."""
    project = _project(request, owner, name)
    if request.token in request.state.job_tokens:
        raise Refusal(500, "The given id must not be null", BOOT_ERROR)
    return project


def _release(project: Project, release_id: str) -> Release:
    for release in project.releases:
        if release.id == release_id:
            return release
    raise Refusal(404, f"Release {release_id} not found")


def _file_json(request: Request, project: Project, release: Release, stored: StoredFile) -> dict:
    return {
        "name": stored.name,
        "uuid": stored.id,
        "link": request.state.file_link(f"/project/{project.repository}/release/{release.id}/file/{stored.id}"),
        "size": stored.size,
        # A file stored through the sandbox's other forge has only the hashes that forge keeps.
        **{field: stored.digests[alg] for alg, field in HASH_FIELDS.items() if alg in stored.digests},
    }


def _release_json(request: Request, project: Project, release: Release) -> dict:
    return {
        "id": release.id,
        "title": release.title,
        "projectId": project.repository,
        "authorId": "sandbox-user",
        "description": release.body,
        "tagName": release.tag,
        "commitId": "0" * 40,
        "createdAt": release.created_at,
        "updatedAt": release.created_at,
        "attachmentFiles": [_file_json(request, project, release, f) for f in release.files] or None,
        "preRelease": release.prerelease,
    }


def list_releases(request: Request, owner: str, name: str) -> Reply:
    with request.state.lock:
        project = _project(request, owner, name)
        try:
            page = max(0, int(request.param("page", "0")))
            asked = int(request.param("size", "10"))
        except ValueError:
            raise Refusal(400, "page and size must be numbers") from None
        size = max(1, min(asked, request.state.settings.page_size_cap))
        newest_first = sorted(project.releases, key=lambda r: r.created_at, reverse=True)
        chunk = newest_first[page * size : (page + 1) * size]
        answer: dict[str, object] = {
            "page": {
                "size": size,
                "totalElements": len(newest_first),
                "totalPages": math.ceil(len(newest_first) / size),
                "number": page,
            }
        }
        if chunk:  # GitFlic leaves _embedded out of an empty page
            answer["_embedded"] = {"releaseTagModelList": [_release_json(request, project, r) for r in chunk]}
        return Reply(200, answer)


def latest_release(request: Request, owner: str, name: str) -> Reply:
    with request.state.lock:
        project = _project(request, owner, name)
        if not project.releases:
            raise Refusal(404, "No releases")
        newest = max(project.releases, key=lambda r: r.created_at)
        return Reply(200, _release_json(request, project, newest))


def get_release(request: Request, owner: str, name: str, release_id: str) -> Reply:
    with request.state.lock:
        project = _project(request, owner, name)
        return Reply(200, _release_json(request, project, _release(project, release_id)))


def create_release(request: Request, owner: str, name: str) -> Reply:
    body = request.json() or {}
    with request.state.lock:
        project = _changeable(request, owner, name)
        tag = body.get("tagName") or ""
        if tag not in project.tags:
            raise Refusal(404, f"Tag '{tag}' not found in project {project.repository}")
        if not request.state.settings.allow_duplicate_tags and any(r.tag == tag for r in project.releases):
            raise Refusal(409, f"Release for tag '{tag}' already exists")
        release = Release(
            id=new_id(),
            tag=tag,
            title=body.get("title") or tag,
            body=request.state.settings.stored_text(body.get("description") or ""),
            prerelease=bool(body.get("preRelease")),
            created_at=request.state.timestamp(),
        )
        project.releases.append(release)
        return Reply(200, _release_json(request, project, release))


def edit_release(request: Request, owner: str, name: str, release_id: str) -> Reply:
    body = request.json() or {}
    with request.state.lock:
        project = _changeable(request, owner, name)
        release = _release(project, release_id)
        release.title = body.get("title", release.title)
        release.body = request.state.settings.stored_text(body.get("description", release.body))
        release.prerelease = bool(body.get("preRelease", release.prerelease))
        return Reply(200, _release_json(request, project, release))


def delete_release(request: Request, owner: str, name: str, release_id: str) -> Reply:
    with request.state.lock:
        project = _changeable(request, owner, name)
        project.releases.remove(_release(project, release_id))
        return Reply(200)


def add_files(request: Request, owner: str, name: str, release_id: str) -> Reply:
    with request.state.lock:
        _release(_changeable(request, owner, name), release_id)
    files = [stored for _, stored in request.form({"files"})[0]]
    if not files:
        raise Refusal(400, "no file in part 'files'")
    settings = request.state.settings
    if settings.gitflic_refuses_debs and any(_is_deb(stored) for stored in files):
        _forget(files)
        raise Refusal(415, "Content type 'application/x-debian-package' not supported")
    kept = files[:1] if settings.gitflic_first_file_only else files
    _forget(files[len(kept) :])
    with request.state.lock:
        project = _project(request, owner, name)
        release = _release(project, release_id)
        release.files.extend(kept)
        return Reply(200, _release_json(request, project, release))


#: How a Debian package begins: an ar archive whose first member is debian-binary.
DEB_MAGIC = b"!<arch>\ndebian-binary"


def _is_deb(stored: StoredFile) -> bool:
    with stored.path.open("rb") as handle:
        return handle.read(len(DEB_MAGIC)) == DEB_MAGIC


def _forget(files: list[StoredFile]) -> None:
    for stored in files:
        stored.path.unlink(missing_ok=True)


def delete_files(request: Request, owner: str, name: str, release_id: str) -> Reply:
    ids = request.json()
    if not isinstance(ids, list):
        raise Refusal(400, "expected a JSON array of file uuids")
    if request.state.settings.gitflic_deletes_first_only:
        ids = ids[:1]
    with request.state.lock:
        project = _changeable(request, owner, name)
        release = _release(project, release_id)
        removed = [f for f in release.files if f.id in ids]
        release.files = [f for f in release.files if f.id not in ids]
        for stored in removed:  # a deleted file is gone from storage too
            stored.path.unlink(missing_ok=True)
        return Reply(200, _release_json(request, project, release))


def download_file(request: Request, owner: str, name: str, release_id: str, file_id: str) -> Reply:
    with request.state.lock:
        release = _release(_project(request, owner, name), release_id)
        stored = next((f for f in release.files if f.id == file_id), None)
        if stored is None:
            raise Refusal(404, f"File {file_id} not found")
        return Reply(200, file=stored.path)
