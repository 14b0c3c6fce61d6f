"""The whole story of one run: inputs -> plan -> release -> uploads -> verification -> result."""
from __future__ import annotations

import dataclasses
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import checksums, forges, notes, releases, uploads
from .artifacts import Artifact, check_names, expand
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
    body = notes.compose(inputs.body, inputs.changelog, inputs.generate_notes, inputs.tag_name, inputs.workspace)
    artifacts = _local_files(inputs)
    if inputs.checksums and not artifacts:
        log.warning("No file is published, so no checksums file is written (input 'checksums').")
        inputs = dataclasses.replace(inputs, checksums=None)
    if inputs.checksums:
        checksums.ask(artifacts, inputs.checksums_algorithm)
    forge = forges.connect(
        inputs.forge, api_url=inputs.api_url, token=inputs.token, repository=inputs.repository,
        policy=inputs.retry, timeout=inputs.timeout_seconds, ca_bundle=inputs.ca_bundle,
        connections=inputs.parallel, job_token=inputs.job_token,
    )
    _check_forge_can(forge, inputs, artifacts)
    spec = forge.fit(ReleaseSpec(
        tag=inputs.tag_name, title=inputs.name, body=body, prerelease=inputs.prerelease,
        draft=inputs.draft, target_branch=inputs.target_branch, body_mode=inputs.body_mode,
    ))
    log.info(
        "Publishing %s of %s on %s (%s): %d file(s).",
        spec.tag, inputs.repository, forge.title, inputs.api_url, len(artifacts),
    )

    found = forge.find_release(spec.tag)
    plan = uploads.plan(forge, found, artifacts, overwrite=inputs.overwrite_files,
                        remove_others=inputs.remove_other_assets, also_published=_checksums_name(inputs))
    if inputs.checksums:
        checksums.refuse_stale(forge, found, inputs.checksums, any(s.action != uploads.UNCHANGED for s in plan.steps))
    _warn_about_rate_limit(forge, plan, bool(inputs.checksums))
    if inputs.dry_run:
        _describe(forge, found, spec, plan, inputs)
        return None

    release = releases.ensure(forge, found, spec, inputs.retry)
    outcomes = _upload(forge, release, plan.steps, inputs)
    if inputs.checksums:
        outcomes += _publish_checksums(forge, release, outcomes, inputs)
    outcomes += uploads.remove_others(forge, release, plan.removals)
    release = releases.finish(forge, release, spec, inputs.retry)
    state = "left a draft" if release.draft else "published"
    log.info("Release %s is %s at %s (%d API calls).", release.tag, state, release.url, forge.http.calls)
    return Result(release=release, outcomes=outcomes, api_calls=forge.http.calls)


def _local_files(inputs: Inputs) -> list[Artifact]:
    artifacts, _ = expand(inputs.patterns, inputs.working_directory, fail_on_unmatched=inputs.fail_on_unmatched_files)
    if not artifacts and inputs.remove_other_assets:
        # A failed or empty build must not empty a rolling release.
        raise InputError(f"Input 'remove_other_assets' is true, but input 'files' selects no file in"
                         f" {inputs.working_directory}, so every asset of release {inputs.tag_name} would be removed;"
                         " nothing was changed: check that the build produced its files.")
    check_names(artifacts)
    for artifact in artifacts:
        if artifact.name == inputs.checksums:
            raise InputError(f"Input 'files' selects {artifact.path}, which would be published as '{artifact.name}',"
                             " the name input 'checksums' gives the checksums file; leave it out or name one otherwise.")
        if artifact.size == 0:
            log.warning("%s is empty (0 bytes); it will be published as it is.", artifact.path)
    return artifacts


def _check_forge_can(forge: forges.Forge, inputs: Inputs, artifacts: list[Artifact]) -> None:
    """What the forge cannot store or do is an input error, found before its first request."""
    for artifact in artifacts:
        problem = forge.asset_name_problem(artifact.name)
        if problem:
            raise InputError(f"{artifact.path} cannot be published on {forge.title} as '{artifact.name}': {problem}; rename it.")
    problem = inputs.checksums and forge.asset_name_problem(inputs.checksums)
    if problem:
        raise InputError(f"Input 'checksums' names '{inputs.checksums}', which {forge.title} cannot store under that"
                         f" name: {problem}; name it otherwise.")
    if inputs.remove_other_assets and not forge.can_delete_assets:
        raise InputError(f"Input 'remove_other_assets' cannot be true for {forge.title}, which has no API to delete"
                         " assets; remove them in its web interface, or publish under a new tag.")


def _checksums_name(inputs: Inputs) -> frozenset[str]:
    return frozenset({inputs.checksums}) if inputs.checksums else frozenset()


def _upload(forge: forges.Forge, release: Release, steps: list[uploads.Step], inputs: Inputs) -> list[uploads.Outcome]:
    return uploads.carry_out(forge, release, steps, verify=inputs.verify, policy=inputs.retry, parallel=inputs.parallel)


def _publish_checksums(forge: forges.Forge, release: Release, outcomes: list[uploads.Outcome],
                       inputs: Inputs) -> list[uploads.Outcome]:
    """Write the checksums of every file published above, then publish that file like the others."""
    published = [outcome.artifact for outcome in outcomes if outcome.artifact is not None]
    with tempfile.TemporaryDirectory(prefix="release-action-") as folder:
        sums = checksums.write(published, inputs.checksums, inputs.checksums_algorithm, Path(folder))
        # The program's own file: brought up to date whatever overwrite_files says.
        steps = uploads.plan(forge, release, [sums], overwrite=True).steps
        return _upload(forge, release, steps, inputs)


def _describe(forge: forges.Forge, found: Release | None, spec: ReleaseSpec, plan: uploads.Plan, inputs: Inputs) -> None:
    log.info("Dry run; nothing is changed. Would:")
    lines = [releases.describe(found, spec), *uploads.describe_plan(plan)]
    if inputs.checksums:
        lines.append(f"publish {inputs.checksums}, the {inputs.checksums_algorithm} of {len(plan.steps)} file(s),"
                     " written after the uploads (left as it is when identical)")
    for line in lines + releases.describe_finish(forge, found, spec):
        log.info("  - %s", line)
    if spec.body is not None:
        log.info("Release notes (body_mode %s):\n%s", spec.body_mode, _indented(spec.body))


def _indented(text: str) -> str:
    return "\n".join(f"    {line}" for line in text.splitlines())


def _warn_about_rate_limit(forge: forges.Forge, plan: uploads.Plan, checksums_file: bool) -> None:
    """Say so before a run that cannot finish within the forge's hourly request limit."""
    limit = forge.hourly_request_limit
    # So far, plus the release's create or update and a publish, plus each upload and delete.
    needed = forge.http.calls + 2 + uploads.requests_needed(plan) + checksums_file
    if limit is not None and needed > limit:
        log.warning(
            "This run needs about %d API requests, and %s allows %d an hour on its public server: it will be"
            " answered 429 and wait for the limit to reset; upload fewer files per run or raise the limit"
            " on a self-hosted server.", needed, forge.title, limit,
        )
