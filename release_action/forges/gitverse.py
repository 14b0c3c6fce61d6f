"""GitVerse (Sber): Gitea's dialect (gitea.py), and where GitVerse departs from it.

A versioned Accept header on every request (without it, every answer is a 400
with an empty body); Bearer tokens; pages of at most 30; a 404 for the list of a
repository with no releases; a ``target_commitish`` that must be a full commit
SHA, and is required; file types it refuses (``.html`` is known).
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

import requests

from ..errors import ForgeError, InputError
from . import CiToken, ReleaseSpec, within
from .gitea import FULL_SHA, Gitea, actions_defaults


class GitVerse(Gitea):
    """GitVerse: Gitea's dialect, with its own header, auth, paging and rules."""

    name = "gitverse"
    title = "GitVerse"
    default_api_url = "https://api.gitverse.ru"
    hourly_request_limit = 500  # documented: 500 API requests an hour per client
    page_size_parameter = "per_page"
    page_size = 30  # documented: per_page of at most 30
    drafts_by_tag = False  # a guess: not documented either way, so drafts are looked for in the list
    empty_list_is_404 = True  # seen
    fetches_by_uuid = False  # its browser_download_url is the copy's own: /api/attachments/<uuid> [seen]
    # Without it every request answers 400 with an empty body.
    request_headers = {"Accept": "application/vnd.gitverse.object+json;version=1"}
    #: File types GitVerse has been seen to refuse as release assets.
    REFUSED_SUFFIXES = (".html", ".qmd")
    rights = "a token made at gitverse.ru/settings/tokens with the public API scope, from a user who may write to it"
    size_limit = "GitVerse's limit is its own; publish the file in smaller parts, or elsewhere"
    type_limit = "publish it packed in an archive (zip, tar.gz)"

    domain = "gitverse.ru"

    @classmethod
    def runs_this_ci(cls, environ: Mapping[str, str]) -> bool:
        # GitVerse CI runs GitHub-style workflows; its server address is the only sign of it. A Gitea or
        # Forgejo runner that names an API of its own is that server's, whatever its server URL says.
        api_url = environ.get("GITHUB_API_URL", "")
        if Gitea.runs_this_ci(environ) and api_url and not within(api_url, cls.domain):
            return False
        return within(environ.get("GITHUB_SERVER_URL", ""), cls.domain)

    @classmethod
    def ci_token(cls, environ: Mapping[str, str]) -> CiToken | None:
        return None  # GitVerse CI's token is given as input 'token' (secrets.GITVERSE_TOKEN, say)

    @classmethod
    def serves(cls, api_url: str) -> bool:
        return within(api_url, cls.domain)

    @classmethod
    def context_defaults(cls, environ: Mapping[str, str]) -> dict[str, str]:
        if not cls.runs_this_ci(environ):
            return {}
        defaults = actions_defaults(environ)
        # A run started by the tag has the tag's commit: GitVerse makes a release only with a commit SHA.
        if environ.get("GITHUB_REF_TYPE") == "tag" and FULL_SHA.fullmatch(environ.get("GITHUB_SHA", "")):
            defaults["target_branch"] = environ["GITHUB_SHA"]
        return defaults

    @classmethod
    def authorization(cls, token: str) -> str:
        return f"Bearer {token}"

    @classmethod
    def describe_error(cls, response: requests.Response) -> str:
        if response.status_code == 400 and not response.content.strip():
            return (
                "an empty answer, which GitVerse gives to a request without its Accept header"
                f" ({cls.request_headers['Accept']}); is api_url GitVerse's API, {cls.default_api_url}?"
            )
        return super().describe_error(response)

    def fit(self, spec: ReleaseSpec) -> ReleaseSpec:
        # Checked before any request, so before it is known whether the release exists: every run names
        # the commit a new release would be made from.
        if not spec.target_branch:
            raise InputError(
                f"GitVerse makes a release only with the full SHA of the tag's commit, and none is known"
                f" outside a run started by tag '{spec.tag}'; set target_branch to it, from git rev-parse"
                f" '{spec.tag}^{{commit}}'."
            )
        if not FULL_SHA.fullmatch(spec.target_branch):
            raise InputError(
                f"Input 'target_branch' is '{spec.target_branch}', and GitVerse makes a release only from"
                " a full commit SHA (a branch name is refused); give the tag's commit, from"
                f" git rev-parse '{spec.tag}^{{commit}}'."
            )
        return spec

    def asset_name_problem(self, name: str) -> str | None:
        if name.lower().endswith(self.REFUSED_SUFFIXES):
            return f"GitVerse refuses {', '.join(self.REFUSED_SUFFIXES)} files as release assets; pack it in an archive"
        return super().asset_name_problem(name)

    @property
    def _web_url(self) -> str:
        """GitVerse's web side is the API's host without ``api.``: api.gitverse.ru -> gitverse.ru."""
        parts = urlsplit(self.http.api_url)
        return f"{parts.scheme}://{parts.netloc.removeprefix('api.')}{parts.path.rstrip('/')}"

    def explain_refused_create(self, spec: ReleaseSpec, error: ForgeError) -> str:
        if error.status == 422:
            return (
                f"GitVerse would not create release {spec.tag} from commit {spec.target_branch}; check that it is"
                f" the full SHA of a commit in {self.repository} ({error})"
            )
        return super().explain_refused_create(spec, error)


FORGE = GitVerse
