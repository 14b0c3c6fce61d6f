"""Gitea's release API (also Forgejo's), and GitVerse's variant of it, in the sandbox forge.

Gitea is served under ``/api/v1``, as a real server is; GitVerse, whose API has a host of its own
(api.gitverse.ru), under ``/gitverse`` here. Both: releases with numeric ids, one per tag (drafts
included); a draft makes its tag only when published, and a release for a tag that does not exist
makes it from ``target_commitish`` (the default branch when none is given), as Gitea does; uploads
take the name from the ``name`` query parameter, read as Go's ``url.Query`` reads it, and the bytes
from the part ``attachment``; files download through ``browser_download_url`` from the web side.
Errors are ``{message, url}``, a 404 adds ``errors``. Limits a server sets: ``attachment_max_bytes``
([attachment] MAX_SIZE, or since 1.26 [repository.release] FILE_MAX_SIZE, go-gitea/gitea#36697) and
``allowed_types`` ([repository.release] ALLOWED_TYPES); ``GET /version`` reports ``gitea_version``.

GitVerse's rules, each a documented or seen fact (shared/api/README.md): every request without
``Accept: application/vnd.gitverse.object+json;version=1`` is a 400 with an empty body [doc, seen];
Bearer tokens [doc]; a page holds at most 30 [doc]; the list of a repository with no release is a
404 [seen]; a create needs ``target_commitish``, a full commit SHA (a branch name is a 422) [doc,
seen]; ``.html`` and ``.qmd`` files are refused [seen]. Guesses, marked so: it does not show a
draft by its tag, and ignores the list's ``draft`` filter (the program must find a draft by paging).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import PurePosixPath
from urllib.parse import quote, unquote, unquote_to_bytes, urlsplit

from .api import ForgeApi, Request
from .state import Project, Refusal, Release, Reply, StoredFile, new_id

REPO = r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"
RELEASE = REPO + r"/releases/(?P<release_id>[0-9]+)"
FULL_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
GITVERSE_ACCEPT = "application/vnd.gitverse.object+json;version=1"
DOCS_URL = "https://gitea.com/api/swagger"
#: A fault's code for an error answer with no body at all.
EMPTY = "empty"
#: The message Gitea gives a file its ALLOWED_TYPES refuses (upload.ErrFileTypeForbidden).
FORBIDDEN_TYPE = "This file extension or type is not allowed to be uploaded. Type: {}"


class GiteaApi(ForgeApi):
    name = "gitea"
    prefix = "/api/v1"
    roots = ("/api/v1/",)
    #: Gitea is a Go program: net/http's multipart reader and Part.FileName().
    multipart_rules = "go"
    #: What the list's page size is called, and the most a page holds (MAX_RESPONSE_ITEMS).
    page_parameter = "limit"
    page_cap = 50
    #: Token schemes the API takes, as Gitea's auth reads the Authorization header.
    schemes: tuple[str, ...] = ("token", "bearer")
    #: Where browser_download_url points, under the sandbox's address.
    web_prefix = ""
    #: Gitea's rules that GitVerse keeps otherwise: the list of a repository with no release answers
    #: 200; a draft is shown by its tag; the list's draft filter is honoured.
    empty_list_status = 200
    shows_drafts_by_tag = True
    filters_drafts = True
    #: Whether GET /version answers (a guess for GitVerse: it documents no such path).
    reports_version = True

    def routes(self):
        def route(method: str, tail: str, handler):
            return (method, re.compile("^" + re.escape(self.prefix) + tail + "$"), handler)

        version = [route("GET", "/version", get_version)] if self.reports_version else []
        return version + [
            route("GET", REPO + "/releases", list_releases),
            route("POST", REPO + "/releases", create_release),
            route("GET", REPO + r"/releases/tags/(?P<tag>[^/]+)", release_by_tag),
            route("GET", RELEASE, get_release),
            route("PATCH", RELEASE, edit_release),
            route("DELETE", RELEASE, delete_release),
            route("GET", RELEASE + "/assets", list_assets),
            route("POST", RELEASE + "/assets", upload_asset),
            route("GET", RELEASE + r"/assets/(?P<asset_id>[0-9]+)", get_asset),
            route("DELETE", RELEASE + r"/assets/(?P<asset_id>[0-9]+)", delete_asset),
            route("GET", REPO + r"/tags/(?P<tag>[^/]+)", get_tag),
        ]

    def web_routes(self):
        """The web side's downloads (not the API: not held to its description)."""
        return [
            (
                "GET",
                re.compile(
                    "^" + re.escape(self.web_prefix) + r"/(?P<owner>[^/]+)/(?P<repo>[^/]+)/releases/download/"
                    r"(?P<tag>[^/]+)/(?P<file_name>[^/]+)$"
                ),
                download_by_tag,
            ),
            ("GET", re.compile("^" + re.escape(self.web_prefix) + r"/attachments/(?P<uuid>[^/]+)$"), download_by_uuid),
        ]

    def admit(self, headers) -> Reply | None:
        return None

    def token(self, headers) -> str | None:
        scheme, _, token = (headers.get("Authorization") or "").partition(" ")
        return token.strip() if scheme.lower() in self.schemes and token.strip() else None

    def error(self, status: int, message: str, code: str | None = None) -> Reply:
        body: dict[str, str | list[str]] = {"message": message, "url": DOCS_URL}
        if status == 404:
            body["errors"] = [message]
        return Reply(status, body)

    # -- GitVerse's rules, none in Gitea ----------------------------------------

    def check_create(self, body: dict) -> None:
        pass

    def refused_type(self, name: str) -> str | None:
        return None


class GitVerseApi(GiteaApi):
    name = "gitverse"
    prefix = "/gitverse"
    roots = ("/gitverse/",)
    page_parameter = "per_page"
    page_cap = 30
    schemes = ("bearer",)
    web_prefix = "/gitverse-web"
    REFUSED_SUFFIXES = (".html", ".qmd")
    empty_list_status = 404
    shows_drafts_by_tag = False  # a guess
    filters_drafts = False  # a guess
    reports_version = False

    def web_routes(self):
        # Files of a public repository download from /api/attachments/<uuid> without a token [seen].
        return [
            (
                "GET",
                re.compile("^" + re.escape(self.web_prefix) + r"/api/attachments/(?P<uuid>[^/]+)$"),
                download_by_uuid,
            )
        ]

    def error(self, status: int, message: str, code: str | None = None) -> Reply:
        if code == EMPTY:  # what GitVerse answers a request without its Accept header
            return Reply(status)
        return super().error(status, message, code)

    def admit(self, headers) -> Reply | None:
        if GITVERSE_ACCEPT not in [part.strip() for part in (headers.get("Accept") or "").split(",")]:
            return Reply(400)
        return None

    def check_create(self, body: dict) -> None:
        target = body.get("target_commitish")
        if not isinstance(target, str) or not FULL_SHA.fullmatch(target):
            raise Refusal(422, "target_commitish must be a full commit SHA")

    def refused_type(self, name: str) -> str | None:
        return "file type not allowed" if name.lower().endswith(self.REFUSED_SUFFIXES) else None


# -- numbers and JSON ----------------------------------------------------------------


def _dialect(request: Request) -> GiteaApi:
    """Gitea's or GitVerse's rules: the server hands a route the API whose routes matched, and every
    route of this module is a GiteaApi's."""
    api = request.api
    assert isinstance(api, GiteaApi), "a route of gitea.py is reached only through a GiteaApi"
    return api


def _number(request: Request, key: str) -> int:
    """The forge's number for a file (the sandbox keeps uuids for every forge's), or a new one."""
    with request.state.lock:
        return request.state.numbers.setdefault(key, len(request.state.numbers) + 1)


def _project(request: Request, owner: str, repo: str) -> Project:
    return request.project(f"{unquote(owner)}/{unquote(repo)}")


def _release(request: Request, project: Project, release_id: str) -> Release:
    for release in project.releases:
        if release.id == release_id:
            return release
    raise Refusal(404, "release not found")


def _commit(project: Project, tag: str) -> str:
    """A tag's commit, made up but fixed."""
    return hashlib.sha1(f"{project.repository}@{tag}".encode()).hexdigest()


def _asset_json(request: Request, project: Project, release: Release, stored: StoredFile) -> dict:
    dialect = _dialect(request)
    web = dialect.web_prefix
    if dialect.name == "gitverse":  # the file's own address [seen]
        link = request.state.file_link(f"{web}/api/attachments/{stored.id}")
    elif release.draft:  # no tag yet: the file is reached by its uuid
        link = request.state.file_link(f"{web}/attachments/{stored.id}")
    else:
        link = request.state.file_link(
            f"{web}/{project.repository}/releases/download/{quote(release.tag, safe='')}/{quote(stored.name, safe='')}"
        )
    return {
        "id": _number(request, stored.id),
        "name": stored.name,
        "size": stored.size,
        "download_count": 0,
        "created_at": "2026-01-01T00:00:00Z",
        "uuid": stored.id,
        "browser_download_url": link,
    }


def _release_json(request: Request, project: Project, release: Release) -> dict:
    number = int(release.id)
    api = f"{request.state.public_url}{_dialect(request).prefix}/repos/{project.repository}"
    web = f"{request.state.public_url}/{project.repository}"
    return {
        "id": number,
        "tag_name": release.tag,
        "target_commitish": release.target_branch or "main",
        "name": release.title,
        "body": release.body,
        "url": f"{api}/releases/{number}",
        "html_url": f"{web}/releases/tag/{quote(release.tag, safe='')}",
        "tarball_url": f"{web}/archive/{quote(release.tag, safe='')}.tar.gz",
        "zipball_url": f"{web}/archive/{quote(release.tag, safe='')}.zip",
        "draft": release.draft,
        "prerelease": release.prerelease,
        "created_at": release.created_at,
        "published_at": release.created_at,
        "author": {"id": 1, "login": "sandbox-user", "full_name": "", "email": "sandbox@example.invalid"},
        "assets": [_asset_json(request, project, release, f) for f in release.files],
    }


# -- routes -------------------------------------------------------------------------


def list_releases(request: Request, owner: str, repo: str) -> Reply:
    dialect = _dialect(request)
    with request.state.lock:
        project = _project(request, owner, repo)
        try:
            page = max(1, int(request.param("page", "1")))
            size = int(request.param(dialect.page_parameter, "30"))
        except ValueError:
            raise Refusal(422, "page and page size must be numbers") from None
        size = max(1, min(size, dialect.page_cap, request.state.settings.page_size_cap))
        releases = sorted(project.releases, key=lambda r: r.created_at, reverse=True)
        if not releases and dialect.empty_list_status == 404:
            raise Refusal(404, "releases not found")
        wanted = request.param("draft")
        if wanted in ("true", "false") and dialect.filters_drafts:
            releases = [r for r in releases if r.draft == (wanted == "true")]
        chunk = releases[(page - 1) * size : page * size]
        return Reply(200, [_release_json(request, project, r) for r in chunk], {"X-Total-Count": str(len(releases))})


def create_release(request: Request, owner: str, repo: str) -> Reply:
    body = request.json()
    if not isinstance(body, dict) or not isinstance(body.get("tag_name"), str) or not body["tag_name"]:
        raise Refusal(422, "tag_name is required")
    _dialect(request).check_create(body)
    with request.state.lock:
        project = _project(request, owner, repo)
        tag = body["tag_name"]
        if any(r.tag == tag for r in project.releases):
            raise Refusal(409, f"Release for tag '{tag}' already exists")
        target = body.get("target_commitish") or None
        release = Release(
            id=str(_number(request, new_id())),
            tag=tag,
            title=body.get("name") or tag,
            body=request.state.settings.stored_text(body.get("body") or ""),
            prerelease=bool(body.get("prerelease")),
            created_at=request.state.timestamp(),
            draft=bool(body.get("draft")),
            target_branch=target,
        )
        if not release.draft:
            project.tags.add(tag)  # Gitea makes a missing tag from the target, the default branch by default
        project.releases.append(release)
        return Reply(201, _release_json(request, project, release))


def release_by_tag(request: Request, owner: str, repo: str, tag: str) -> Reply:
    with request.state.lock:
        project = _project(request, owner, repo)
        for release in project.releases:
            if release.tag == unquote(tag) and (_dialect(request).shows_drafts_by_tag or not release.draft):
                return Reply(200, _release_json(request, project, release))
        raise Refusal(404, "release not found")


def get_release(request: Request, owner: str, repo: str, release_id: str) -> Reply:
    with request.state.lock:
        project = _project(request, owner, repo)
        return Reply(200, _release_json(request, project, _release(request, project, release_id)))


def edit_release(request: Request, owner: str, repo: str, release_id: str) -> Reply:
    body = request.json()
    if not isinstance(body, dict):
        raise Refusal(422, "expected a JSON object")
    with request.state.lock:
        project = _project(request, owner, repo)
        release = _release(request, project, release_id)
        if isinstance(body.get("name"), str):
            release.title = body["name"]
        if isinstance(body.get("body"), str):
            release.body = request.state.settings.stored_text(body["body"])
        if isinstance(body.get("prerelease"), bool):
            release.prerelease = body["prerelease"]
        if body.get("draft") is False and release.draft:
            release.draft = False
            project.tags.add(release.tag)  # published: the tag is made now, if it was missing
        return Reply(200, _release_json(request, project, release))


def delete_release(request: Request, owner: str, repo: str, release_id: str) -> Reply:
    with request.state.lock:
        project = _project(request, owner, repo)
        project.releases.remove(_release(request, project, release_id))
        return Reply(204)


def list_assets(request: Request, owner: str, repo: str, release_id: str) -> Reply:
    with request.state.lock:
        project = _project(request, owner, repo)
        release = _release(request, project, release_id)
        return Reply(200, [_asset_json(request, project, release, f) for f in release.files])


def upload_asset(request: Request, owner: str, repo: str, release_id: str) -> Reply:
    settings = request.state.settings
    with request.state.lock:
        _release(request, _project(request, owner, repo), release_id)
    if settings.attachment_max_bytes and (request.content_length or 0) > settings.attachment_max_bytes:
        if _at_least(settings.gitea_version, (1, 26)):  # [repository.release] FILE_MAX_SIZE's own words
            raise Refusal(413, f"attachment exceeds limit {settings.attachment_max_bytes}")
        raise Refusal(413, f"attachment is too large (over {settings.attachment_max_bytes} bytes)")
    name = go_query(urlsplit(request.handler.path).query).get("name", "")
    files, _ = request.form({"attachment"})
    if not files:
        raise Refusal(400, "no file in part 'attachment'")
    ((_, stored),) = files
    # Gitea: the query's name, else the part's file name (Part.FileName, which keeps the base name).
    chosen = request.stored_name(name) if name else PurePosixPath(stored.name).name
    refused = _dialect(request).refused_type(chosen) or _forbidden_type(settings.allowed_types, chosen)
    if refused:
        stored.path.unlink(missing_ok=True)
        raise Refusal(400, refused)
    stored.name = chosen
    with request.state.lock:
        project = _project(request, owner, repo)
        release = _release(request, project, release_id)
        release.files.append(stored)
        return Reply(201, _asset_json(request, project, release, stored))


def _at_least(version: str, wanted: tuple[int, int]) -> bool:
    """Whether a version the server reports ("1.26.0", "1.26.0+dev-12-gabc") is Gitea's ``wanted`` or later;
    Forgejo ("11.0.1+gitea-1.22.0") names the Gitea it follows after "+gitea-"."""
    parts = re.match(r"v?(\d+)\.(\d+)", version.rpartition("+gitea-")[2])
    return parts is not None and (int(parts[1]), int(parts[2])) >= wanted


def get_version(request: Request) -> Reply:
    return Reply(200, {"version": request.state.settings.gitea_version})


def _forbidden_type(allowed: list[str], name: str) -> str | None:
    """Gitea's ALLOWED_TYPES: suffixes (and MIME types, which the sandbox does not sniff)."""
    if not allowed or any(name.lower().endswith(suffix.lower()) for suffix in allowed if suffix.startswith(".")):
        return None
    return FORBIDDEN_TYPE.format("application/octet-stream")


def _asset(request: Request, release: Release, asset_id: str) -> StoredFile:
    for stored in release.files:
        if str(_number(request, stored.id)) == asset_id:
            return stored
    raise Refusal(404, "attachment not found")


def get_asset(request: Request, owner: str, repo: str, release_id: str, asset_id: str) -> Reply:
    with request.state.lock:
        project = _project(request, owner, repo)
        release = _release(request, project, release_id)
        return Reply(200, _asset_json(request, project, release, _asset(request, release, asset_id)))


def delete_asset(request: Request, owner: str, repo: str, release_id: str, asset_id: str) -> Reply:
    with request.state.lock:
        release = _release(request, _project(request, owner, repo), release_id)
        stored = _asset(request, release, asset_id)
        release.files.remove(stored)
        stored.path.unlink(missing_ok=True)
        return Reply(204)


def get_tag(request: Request, owner: str, repo: str, tag: str) -> Reply:
    with request.state.lock:
        project = _project(request, owner, repo)
        name = unquote(tag)
        if name not in project.tags:
            raise Refusal(404, f"tag '{name}' not found")
        sha = _commit(project, name)
        web = f"{request.state.public_url}/{project.repository}"
        return Reply(
            200,
            {
                "name": name,
                "id": sha,
                "message": name,
                "commit": {"sha": sha, "url": f"{web}/commit/{sha}", "created": "2026-01-01T00:00:00Z"},
                "zipball_url": f"{web}/archive/{quote(name, safe='')}.zip",
                "tarball_url": f"{web}/archive/{quote(name, safe='')}.tar.gz",
            },
        )


# -- the web side's downloads ---------------------------------------------------------


def download_by_tag(request: Request, owner: str, repo: str, tag: str, file_name: str) -> Reply:
    with request.state.lock:
        project = _project(request, owner, repo)
        for release in project.releases:
            if release.tag == unquote(tag) and not release.draft:
                for stored in release.files:
                    if stored.name == unquote(file_name):
                        return Reply(200, file=stored.path)
        raise Refusal(404, "file not found")


def download_by_uuid(request: Request, uuid: str) -> Reply:
    dialect = _dialect(request)
    with request.state.lock:
        on_this_forge = [project for (forge, _), project in request.state.projects.items() if forge == dialect.name]
        for project in on_this_forge:
            for release in project.releases:
                for stored in release.files:
                    if stored.id == uuid:
                        if dialect.name != "gitverse":  # GitVerse: a public repository's file
                            request.project(project.repository)
                        return Reply(200, file=stored.path)
        raise Refusal(404, "file not found")


def go_query(raw: str) -> dict[str, str]:
    """A query string as Go's ``url.Query().Get`` reads it: the first value of each key; '+' is a
    space; a pair with a ';' or a bad escape is dropped (Go 1.17 on) rather than read."""
    found: dict[str, str] = {}
    for pair in raw.split("&"):
        if not pair or ";" in pair:
            continue
        key, _, value = pair.partition("=")
        try:
            key, value = (_go_unescape(part) for part in (key, value))
        except ValueError:
            continue
        found.setdefault(key, value)
    return found


def _go_unescape(text: str) -> str:
    if re.search(r"%(?![0-9A-Fa-f]{2})", text):
        raise ValueError("bad escape")
    return unquote_to_bytes(text.replace("+", " ")).decode("utf-8", "surrogateescape")
