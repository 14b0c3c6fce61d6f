"""Provenance: an in-toto Statement (SLSA provenance v1) that says which run published which files.

It is one more file of the release, listed in the checksums file, so the checksums signature covers
it. Its subjects are the files the run publishes, by name and SHA-256. What the CI run was comes
from the CI system's own variables (GitHub, GitLab, GitFlic, SourceCraft); nothing secret is in it.

A re-run with the same files keeps the statement already published: ``same_build`` compares what
was built and from what (subjects, build definition), not when or by which run (run details), so the
statement goes on naming the run that first published those files, which stays true.
"""
from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from typing import Any, Mapping

from . import __version__
from .artifacts import Artifact

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
PROJECT_URL = "https://github.com/OWNER/release-action"
#: How this action publishes a release; the version says which rules of it applied.
BUILD_TYPE = f"{PROJECT_URL}/provenance/publish/v1"
FILE_NAME = "provenance.intoto.json"
#: A statement is a few kilobytes per hundred files; one on the forge larger than this is not ours.
MAX_BYTES = 16 << 20
#: What may differ between two runs' statements of one build.
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
        return CiRun(url=run, invocation=invocation, system=system, repository=repository, commit=get("GITHUB_SHA"),
                     workflow=get("GITHUB_WORKFLOW_REF").split("@", 1)[0], ref=get("GITHUB_REF"))
    if get("CI_JOB_URL") or get("CI_PIPELINE_URL") or get("CI_PROJECT_URL"):
        return CiRun(
            url=get("CI_JOB_URL") or get("CI_PIPELINE_URL") or get("CI_PROJECT_URL"),
            system="gitlab", repository=get("CI_PROJECT_URL"), commit=get("CI_COMMIT_SHA"),
            workflow=get("CI_CONFIG_PATH"), ref=get("CI_COMMIT_REF_NAME"),
        )
    if get("SOURCECRAFT_CI") or get("SOURCECRAFT_REPO_URL"):
        repository = get("SOURCECRAFT_REPO_URL")
        return CiRun(url=repository or PROJECT_URL, system="sourcecraft", repository=repository,
                     commit=get("SOURCECRAFT_COMMIT_SHA"), workflow=".sourcecraft/ci.yaml",
                     ref=get("SOURCECRAFT_COMMIT_REF"))
    return CiRun(url=PROJECT_URL, system="local")


def _gitea_actions(environ: Mapping[str, str]) -> bool:
    from .forges.gitea import Gitea  # the one place that knows how Gitea's and Forgejo's runners say so

    return Gitea.runs_this_ci(environ)


def statement(published: list[Artifact], *, tag: str, repository: str, run: CiRun,
              started: datetime.datetime, finished: datetime.datetime) -> dict[str, Any]:
    """The statement for ``published``; ``repository`` is the forge's owner/project, used where the CI names none."""
    source = run.repository or repository
    external: dict[str, Any] = {"repository": source, "tag": tag}
    if run.workflow or run.ref:
        external["workflow"] = {"path": run.workflow, "ref": run.ref}
    dependencies = [{"uri": f"git+{source}@refs/tags/{tag}", "digest": {"gitCommit": run.commit}}] if run.commit else []
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": artifact.name, "digest": {"sha256": artifact.digest()}}
                    for artifact in sorted(published, key=lambda artifact: artifact.name)],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": external,
                "internalParameters": {"ci": run.system},
                "resolvedDependencies": dependencies,
            },
            "runDetails": {
                "builder": {"id": run.url, "version": {"release-action": __version__}},
                "metadata": {"invocationId": run.invocation or run.url, "startedOn": _timestamp(started),
                             "finishedOn": _timestamp(finished)},
            },
        },
    }


def dumps(document: dict[str, Any]) -> bytes:
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def same_build(published: bytes, wanted: dict[str, Any]) -> bool:
    """Whether a statement already on the forge is the one this run would write, but for when it ran
    (``runDetails.metadata``). Anything else differing, or added, or written otherwise than this program
    writes it, and it is not kept: the checksums file and its signature are about to vouch for it."""
    try:
        found = json.loads(published)
        metadata = found["predicate"]["runDetails"]["metadata"]
        same = {**found, "predicate": {**found["predicate"], "runDetails": {
            **found["predicate"]["runDetails"], "metadata": wanted["predicate"]["runDetails"]["metadata"]}}}
        return (same == wanted and dumps(found) == published and set(metadata) == set(METADATA)
                and all(isinstance(value, str) for value in metadata.values()))
    except (ValueError, KeyError, TypeError, AttributeError):
        return False


def _timestamp(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
