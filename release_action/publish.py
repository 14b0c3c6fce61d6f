"""The whole story of one run: inputs -> plan -> release -> uploads -> verification -> result."""
from __future__ import annotations

import logging
from dataclasses import dataclass

from . import forges, notes, releases, uploads
from .artifacts import check_names, expand
from .errors import InputError
from .forges import Release, ReleaseSpec
from .inputs import Inputs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Result:
    release: Release
    outcomes: list[uploads.Outcome]
    api_calls: int


def publish(inputs: Inputs) -> Result | None:
    """Publish the release; returns None for a dry run, which changes nothing."""
    # Everything local is checked before the first request.
    body = notes.compose(inputs.body, inputs.changelog, inputs.generate_notes, inputs.tag_name)
    artifacts, _ = expand(inputs.patterns, inputs.working_directory, fail_on_unmatched=inputs.fail_on_unmatched_files)
    check_names(artifacts)
    for artifact in artifacts:
        if artifact.size == 0:
            log.warning("%s is empty (0 bytes); it will be published as it is.", artifact.path)
    forge = forges.connect(
        inputs.forge, api_url=inputs.api_url, token=inputs.token, repository=inputs.repository,
        policy=inputs.retry, timeout=inputs.timeout_seconds, ca_bundle=inputs.ca_bundle,
        connections=inputs.parallel, job_token=inputs.job_token,
    )
    for artifact in artifacts:
        problem = forge.asset_name_problem(artifact.name)
        if problem:
            raise InputError(f"{artifact.path} cannot be published on {forge.title} as '{artifact.name}': {problem}; rename it.")
    spec = forge.fit(ReleaseSpec(
        tag=inputs.tag_name, title=inputs.name, body=body, prerelease=inputs.prerelease,
        draft=inputs.draft, target_branch=inputs.target_branch, body_mode=inputs.body_mode,
    ))
    log.info(
        "Publishing %s of %s on %s (%s): %d file(s).",
        spec.tag, inputs.repository, forge.title, inputs.api_url, len(artifacts),
    )

    if inputs.remove_other_assets and not forge.can_delete_assets:
        raise InputError(f"Input 'remove_other_assets' cannot be true for {forge.title}, which has no API to delete"
                         " assets; remove them in its web interface, or publish under a new tag.")

    found = forge.find_release(spec.tag)
    plan = uploads.plan(forge, found, artifacts, overwrite=inputs.overwrite_files,
                        remove_others=inputs.remove_other_assets)
    _warn_about_rate_limit(forge, plan)
    if inputs.dry_run:
        log.info("Dry run; nothing is changed. Would:")
        lines = [releases.describe(found, spec), *uploads.describe_plan(plan)]
        for line in lines + releases.describe_finish(forge, found, spec):
            log.info("  - %s", line)
        if body is not None:
            log.info("Release notes (body_mode %s):\n%s", inputs.body_mode, _indented(body))
        return None

    release = releases.ensure(forge, found, spec, inputs.retry)
    outcomes = uploads.carry_out(
        forge, release, plan.steps, verify=inputs.verify, policy=inputs.retry, parallel=inputs.parallel
    )
    outcomes += uploads.remove_others(forge, release, plan.removals)
    release = releases.finish(forge, release, spec, inputs.retry)
    state = "left a draft" if release.draft else "published"
    log.info("Release %s is %s at %s (%d API calls).", release.tag, state, release.url, forge.http.calls)
    return Result(release=release, outcomes=outcomes, api_calls=forge.http.calls)


def _indented(text: str) -> str:
    return "\n".join(f"    {line}" for line in text.splitlines())


def _warn_about_rate_limit(forge: forges.Forge, plan: uploads.Plan) -> None:
    """Say so before a run that cannot finish within the forge's hourly request limit."""
    limit = forge.hourly_request_limit
    # So far, plus the release's create or update and a publish, plus each upload and delete.
    needed = forge.http.calls + 2 + uploads.requests_needed(plan)
    if limit is not None and needed > limit:
        log.warning(
            "This run needs about %d API requests, and %s allows %d an hour on its public server: it will be"
            " answered 429 and wait for the limit to reset; upload fewer files per run or raise the limit"
            " on a self-hosted server.", needed, forge.title, limit,
        )
