"""Provenance: an in-toto Statement (SLSA provenance v1) that says which run published which files.

It is one more file of the release, listed in the checksums file, so the checksums signature covers
it. Its subjects are the files the run publishes, by name and SHA-256. What the CI run was comes
from the CI system's own variables (GitHub, GitLab, GitFlic, SourceCraft); nothing secret is in it.

A re-run with the same files keeps the statement already published: ``same_build`` compares what
was built and from what (``subject`` and ``predicate.buildDefinition``), never the run details (which
run or attempt, which version of this program, when), so a retried job or a new run of the same
commit changes nothing, and the statement goes on naming the run that first published those files.

With a signing key, the statement is published signed, in a DSSE envelope (``SIGNED_FILE_NAME``),
under the name the field's tools look for (``*.intoto.jsonl``); without one, as the bare statement.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from . import __version__
from .artifacts import Artifact

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
PROJECT_URL = "https://github.com/OWNER/release-action"
#: How this action publishes a release; the version says which rules of it applied.
BUILD_TYPE = f"{PROJECT_URL}/provenance/publish/v1"
FILE_NAME = "provenance.intoto.json"
SIGNED_FILE_NAME = "provenance.intoto.jsonl"
#: A statement is a few kilobytes per hundred files; one on the forge larger than this is not ours.
MAX_BYTES = 16 << 20
#: What two runs' statements of one build must share; everything else (``runDetails``) may differ.
SAME_BUILD = ("_type", "subject", "predicateType")
METADATA = ("invocationId", "startedOn", "finishedOn")


@dataclass(frozen=True)
class CiRun:
    """The CI run, as its own variables describe it; empty strings where a CI system does not say."""

    #: The run's web page, or where none is known, this action's own address.
    url: str
    #: Which CI system ran it: github, gitea (Gitea and Forgejo Actions), gitlab (GitLab and GitFlic),
    #: sourcecraft, or local.
    system: str
    #: This attempt of the run, where the CI system tells attempts apart; else the run's page.
    invocation: str = ""
    repository: str = ""
    commit: str = ""
    #: The workflow or pipeline file, and the ref it ran for.
    workflow: str = ""
    ref: str = ""


def ci_run(environ: Mapping[str, str]) -> CiRun:
    """What the CI variables say about this run (GitHub's, which Gitea's and Forgejo's runners set too; GitLab's,
    which GitFlic CI shares; SourceCraft's)."""
    get = lambda name: environ.get(name, "").strip()  # noqa: E731
    if get("GITHUB_ACTIONS") == "true" and get("GITHUB_RUN_ID"):
        repository = f"{get('GITHUB_SERVER_URL') or 'https://github.com'}/{get('GITHUB_REPOSITORY')}"
        if _gitea_actions(environ) and get("GITHUB_RUN_NUMBER"):
            # Gitea and Forgejo name a run's page by its number in the repository (GITHUB_RUN_ID is an
            # id across the whole instance), and their pages have no attempts.
            run = invocation = f"{repository}/actions/runs/{get('GITHUB_RUN_NUMBER')}"
            system = "gitea"
        else:
            run = f"{repository}/actions/runs/{get('GITHUB_RUN_ID')}"
            invocation, system = f"{run}/attempts/{get('GITHUB_RUN_ATTEMPT') or '1'}", "github"
        return CiRun(
            url=run,
            invocation=invocation,
            system=system,
            repository=repository,
            commit=get("GITHUB_SHA"),
            workflow=get("GITHUB_WORKFLOW_REF").split("@", 1)[0],
            ref=get("GITHUB_REF"),
        )
    if get("CI_JOB_URL") or get("CI_PIPELINE_URL") or get("CI_PROJECT_URL"):
        return CiRun(
            url=get("CI_JOB_URL") or get("CI_PIPELINE_URL") or get("CI_PROJECT_URL"),
            system="gitlab",
            repository=get("CI_PROJECT_URL"),
            commit=get("CI_COMMIT_SHA"),
            workflow=get("CI_CONFIG_PATH"),
            ref=get("CI_COMMIT_REF_NAME"),
        )
    if get("SOURCECRAFT_CI") or get("SOURCECRAFT_REPO_URL"):
        repository = get("SOURCECRAFT_REPO_URL")
        return CiRun(
            url=repository or PROJECT_URL,
            system="sourcecraft",
            repository=repository,
            commit=get("SOURCECRAFT_COMMIT_SHA"),
            workflow=".sourcecraft/ci.yaml",
            ref=get("SOURCECRAFT_COMMIT_REF"),
        )
    return CiRun(url=PROJECT_URL, system="local")


def _gitea_actions(environ: Mapping[str, str]) -> bool:
    from .forges.gitea import Gitea  # the one place that knows how Gitea's and Forgejo's runners say so

    return Gitea.runs_this_ci(environ)


def statement(
    published: list[Artifact],
    *,
    tag: str,
    repository: str,
    run: CiRun,
    started: datetime.datetime,
    finished: datetime.datetime,
) -> dict[str, Any]:
    """The statement for ``published``; ``repository`` is the forge's owner/project, used where the CI names none."""
    source = run.repository or repository
    external: dict[str, Any] = {"repository": source, "tag": tag}
    if run.workflow or run.ref:
        external["workflow"] = {"path": run.workflow, "ref": run.ref}
    dependencies = [{"uri": f"git+{source}@refs/tags/{tag}", "digest": {"gitCommit": run.commit}}] if run.commit else []
    return {
        "_type": STATEMENT_TYPE,
        "subject": [
            {"name": artifact.name, "digest": {"sha256": artifact.digest()}}
            for artifact in sorted(published, key=lambda artifact: artifact.name)
        ],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": external,
                "internalParameters": {"ci": run.system},
                "resolvedDependencies": dependencies,
            },
            "runDetails": {
                "builder": {"id": run.invocation or run.url, "version": {"release-action": __version__}},
                "metadata": {
                    "invocationId": run.invocation or run.url,
                    "startedOn": _timestamp(started),
                    "finishedOn": _timestamp(finished),
                },
            },
        },
    }


def dumps(document: dict[str, Any]) -> bytes:
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def file_name(signed: bool) -> str:
    return SIGNED_FILE_NAME if signed else FILE_NAME


def same_build(published: bytes, wanted: dict[str, Any]) -> bool:
    """Whether a statement already on the forge states the build this run would state: the same subjects
    and build definition, whichever run or attempt wrote it. It must also be written as this program
    writes it, with run details of the form it writes: the checksums file and its signature are about
    to vouch for it."""
    try:
        found = json.loads(published)
        details = found["predicate"]["runDetails"]
        metadata = details["metadata"]
        return (
            all(found[name] == wanted[name] for name in SAME_BUILD)
            and set(found) == set(wanted)
            and set(found["predicate"]) == set(wanted["predicate"])
            and found["predicate"]["buildDefinition"] == wanted["predicate"]["buildDefinition"]
            and dumps(found) == published
            and set(details) == {"builder", "metadata"}
            and set(details["builder"]) == {"id", "version"}
            and set(details["builder"]["version"]) == {"release-action"}
            and set(metadata) == set(METADATA)
            and all(isinstance(value, str) for value in metadata.values())
            # Another run of the same CI: its addresses are on the CI's own server, whatever a forge wrote.
            and _same_origin(details["builder"]["id"], wanted["predicate"]["runDetails"]["builder"]["id"])
            and _same_origin(metadata["invocationId"], wanted["predicate"]["runDetails"]["metadata"]["invocationId"])
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return False


def _same_origin(found: object, wanted: str) -> bool:
    if not isinstance(found, str):
        return False
    try:
        one, other = urlsplit(found), urlsplit(wanted)
    except ValueError:
        return False
    return (one.scheme, one.netloc) == (other.scheme, other.netloc)


def _timestamp(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
