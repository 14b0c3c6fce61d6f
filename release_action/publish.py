"""The whole story of one run: inputs -> key -> plan -> release -> uploads -> verification -> provenance,
checksums and signatures -> result."""

from __future__ import annotations

import dataclasses
import datetime
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import attestations, checksums, forges, notes, provenance, releases, uploads
from . import log as logs
from .artifacts import Artifact, check_names, expand
from .attestations import Attestations
from .errors import InputError
from .forges import Release, ReleaseSpec
from .inputs import Inputs
from .verification import same_content

if TYPE_CHECKING:
    from . import signing

log = logging.getLogger(__name__)

#: Signatures are written to disk under their names before they are uploaded.
MAX_NAME_BYTES = 255


@dataclass(frozen=True)
class Result:
    release: Release
    outcomes: list[uploads.Outcome]
    api_calls: int
    #: The fingerprint or key id of the key that signed the release, if one did.
    signing_key_id: str | None = None


@dataclass(frozen=True)
class DryRun:
    """What a dry run would have done, line by line."""

    tag: str
    lines: list[str]


def publish(inputs: Inputs) -> Result | DryRun:
    """Publish the release; returns None for a dry run, which changes nothing."""
    started = datetime.datetime.now(datetime.UTC)
    if inputs.signing is None:
        return _publish(inputs, None, started)
    from . import signing  # only a run that signs pays for the signing modules

    # The key is checked (and for a real run, tried) before the first request.
    return _publish(inputs, signing.open_signer(inputs.signing, probe=not inputs.dry_run), started)


def _publish(inputs: Inputs, signer: signing.Signer | None, started: datetime.datetime) -> Result | DryRun:
    # Everything local is checked before the first request.
    body = notes.compose(inputs.body, inputs.changelog, inputs.generate_notes, inputs.tag_name, inputs.workspace)
    artifacts = _local_files(inputs)
    if not artifacts and (inputs.checksums or inputs.provenance or signer):
        log.warning("No file is published, so no checksums file is written, and no provenance or signature.")
        inputs, signer = dataclasses.replace(inputs, checksums=None, provenance=False), None
    own = Attestations(
        tag=inputs.tag_name,
        checksums=inputs.checksums,
        algorithm=inputs.checksums_algorithm,
        provenance=provenance.file_name(signed=signer is not None) if inputs.provenance else None,
        signer=signer,
        sign_all=bool(inputs.signing and inputs.signing.sign_files == "all"),
        run=inputs.ci_run,
        started=started,
    )
    own_names = own.names(artifacts)
    _refuse_own_names(artifacts, own_names, inputs.checksums)
    if inputs.checksums:
        checksums.ask(artifacts, inputs.checksums_algorithm)
    body, body_mode = _with_verification(body, inputs.body_mode, own, inputs.signing_notes)
    forge = forges.connect(
        inputs.forge,
        api_url=inputs.api_url,
        token=inputs.token,
        repository=inputs.repository,
        policy=inputs.retry,
        timeout=inputs.timeout_seconds,
        ca_bundle=inputs.ca_bundle,
        connections=inputs.parallel,
        job_token=inputs.job_token,
    )
    _check_forge_can(forge, inputs, artifacts, own_names)
    spec = forge.fit(
        ReleaseSpec(
            tag=inputs.tag_name,
            title=inputs.name,
            body=body,
            prerelease=inputs.prerelease,
            draft=inputs.draft,
            target_branch=inputs.target_branch,
            body_mode=body_mode,
        )
    )
    log.info(
        "Publishing %s of %s on %s (%s): %d file(s).",
        spec.tag,
        inputs.repository,
        forge.title,
        inputs.api_url,
        len(artifacts),
    )
    with logs.phase(f"The release {spec.tag} and what it needs"):
        found = forge.find_release(spec.tag)
        if found is None:  # a dry run refuses what the real run would, with the same reads
            forge.check_new_release(spec)
        fixed_release = found if inputs.immutable and found is not None and not found.draft else None
        fixed = fixed_release is not None
        if fixed_release is not None:
            spec = _as_published(forge, fixed_release, spec, artifacts)
        plan = uploads.plan(
            forge,
            found,
            artifacts,
            overwrite=inputs.overwrite_files and not fixed,
            remove_others=inputs.remove_other_assets,
            also_published=frozenset(own_names),
        )
        _refuse_own_changes(forge, found, plan, own, inputs, immutable=fixed)
        _warn_about_rate_limit(forge, plan, len(own_names))
        if inputs.dry_run:
            return _describe(forge, found, spec, plan, own)
        release = releases.ensure(forge, found, spec, inputs.retry)
    with logs.phase(f"Uploading {len(artifacts)} file(s)"):
        outcomes = _upload(forge, release, plan, inputs)
    if own_names:
        with logs.phase("Checksums, signatures and provenance"):
            outcomes += _publish_own(forge, release, outcomes, own, inputs)
    with logs.phase(f"Finishing release {spec.tag}"):
        outcomes += uploads.remove_others(forge, release, plan.removals)
        release = releases.finish(forge, release, spec, inputs.retry)
    state = "left a draft" if release.draft else "published"
    log.info("Release %s is %s at %s (%d API calls).", release.tag, state, release.url, forge.http.calls)
    return Result(
        release=release, outcomes=outcomes, api_calls=forge.http.calls, signing_key_id=signer.key_id if signer else None
    )


def _local_files(inputs: Inputs) -> list[Artifact]:
    artifacts, _ = expand(inputs.patterns, inputs.working_directory, fail_on_unmatched=inputs.fail_on_unmatched_files)
    if not artifacts and inputs.remove_other_assets:
        # A failed or empty build must not empty a rolling release.
        raise InputError(
            f"Input 'remove_other_assets' is true, but input 'files' selects no file in"
            f" {inputs.working_directory}, so every asset of release {inputs.tag_name} would be removed;"
            " nothing was changed: check that the build produced its files."
        )
    check_names(artifacts)
    for artifact in artifacts:
        if artifact.size == 0:
            log.warning("%s is empty (0 bytes); it will be published as it is.", artifact.path)
    return artifacts


def _refuse_own_names(artifacts: list[Artifact], own_names: list[str], checksums_name: str | None) -> None:
    for artifact in artifacts:
        if artifact.name in own_names:
            whose = (
                "the name input 'checksums' gives the checksums file"
                if artifact.name == checksums_name
                else "the name of a file this run adds (the provenance, or a signature)"
            )
            raise InputError(
                f"Input 'files' selects {artifact.path}, which would be published as '{artifact.name}',"
                f" {whose}; leave it out or name one otherwise."
            )


def _check_forge_can(forge: forges.Forge, inputs: Inputs, artifacts: list[Artifact], own_names: list[str]) -> None:
    """What the forge cannot store or do is an input error, found before its first request."""
    for artifact in artifacts:
        problem = forge.asset_name_problem(artifact.name)
        if problem:
            raise InputError(
                f"{artifact.path} cannot be published on {forge.title} as '{artifact.name}': {problem}; rename it."
            )
    for name in own_names:  # the checksums file's name, and the signatures' made from it and the files'
        problem = forge.asset_name_problem(name)
        if problem is None and len(name.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
            problem = f"it is longer than {MAX_NAME_BYTES} bytes, the longest file name a system writes"
        if problem and inputs.checksums and name.startswith(inputs.checksums):
            raise InputError(
                f"Input 'checksums' names '{inputs.checksums}', which {forge.title} cannot store as"
                f" '{name}': {problem}; name it otherwise."
            )
        if problem:
            raise InputError(
                f"This run would add '{name}', the signature of a file input 'files' selects, and"
                f" {forge.title} cannot store it: {problem}; rename that file."
            )
    if inputs.remove_other_assets and not forge.can_delete_assets:
        raise InputError(
            f"Input 'remove_other_assets' cannot be true for {forge.title}, which has no API to delete"
            " assets; remove them in its web interface, or publish under a new tag."
        )


def _upload(forge: forges.Forge, release: Release, plan: uploads.Plan, inputs: Inputs) -> list[uploads.Outcome]:
    return uploads.carry_out(forge, release, plan, verify=inputs.verify, policy=inputs.retry, parallel=inputs.parallel)


def _publish_own(
    forge: forges.Forge, release: Release, outcomes: list[uploads.Outcome], own: Attestations, inputs: Inputs
) -> list[uploads.Outcome]:
    """Write the provenance, checksums and signatures of every file published above, then publish them
    like the others, all before a draft is published."""
    published = [outcome.artifact for outcome in outcomes if outcome.artifact is not None]
    with tempfile.TemporaryDirectory(prefix="release-action-") as folder:
        made = own.make(forge, release, published, Path(folder), inputs.retry)
        # The program's own files: brought up to date whatever overwrite_files says.
        return _upload(forge, release, uploads.plan(forge, release, made, overwrite=True), inputs)


def _as_published(forge: forges.Forge, found: Release, spec: ReleaseSpec, artifacts: list[Artifact]) -> ReleaseSpec:
    """An immutable release that is published: its notes are kept, and a file of this run that differs from
    the published one is an input error, before any change."""
    changed = _differing(forge, found, artifacts)
    if changed:
        raise InputError(
            f"Release {found.tag} is published and immutable, and {', '.join(changed)} differs from the"
            " published file of that name; nothing was changed: publish the new build under a new tag."
        )
    if (spec.title, spec.body, spec.prerelease) != (None, None, None):
        log.info("Release %s is published and immutable: its title, notes and pre-release flag are kept.", found.tag)
    return dataclasses.replace(spec, title=None, body=None, prerelease=None)


def _differing(forge: forges.Forge, release: Release, artifacts: list[Artifact]) -> list[str]:
    """The files of the release under these names of which no copy holds these bytes."""
    return [
        artifact.name
        for artifact in artifacts
        if release.assets_named(artifact.name)
        and not any(same_content(forge, artifact, asset) for asset in release.assets_named(artifact.name))
    ]


def _refuse_own_changes(
    forge: forges.Forge,
    found: Release | None,
    plan: uploads.Plan,
    own: Attestations,
    inputs: Inputs,
    *,
    immutable: bool,
) -> None:
    """Where a file cannot be replaced (a forge that cannot, or an immutable release that is published), stop
    before any change when the run's own files would have to change."""
    names = own.names([step.artifact for step in plan.steps])
    changes = any(step.action != uploads.UNCHANGED for step in plan.steps)
    attestations.refuse_changes(forge, found, names, changes, immutable=immutable)
    replaceable = forge.can_delete_assets and not immutable
    if replaceable or found is None or changes or not any(found.assets_named(n) for n in names):
        return
    # Nothing else changes: make the files now, as the run would, and see whether any differs.
    with tempfile.TemporaryDirectory(prefix="release-action-") as folder:
        made = own.make(forge, found, [step.artifact for step in plan.steps], Path(folder), inputs.retry)
        if immutable:
            attestations.refuse_changes(forge, found, _differing(forge, found, made), True, immutable=True)
        uploads.plan(forge, found, made, overwrite=True)


def _with_verification(body: str | None, mode: str, own: Attestations, wanted: bool) -> tuple[str | None, str]:
    """The notes with the block that says how to verify; alone, it is added to what the release says."""
    signed = own.signing() if wanted else None
    if signed is None:
        return body, mode
    block = attestations.how_to_verify(*signed, own.algorithm)
    if body is None:
        return block, "append" if mode == "replace" else mode
    return f"{body.rstrip()}\n\n{block}", mode


def _describe(
    forge: forges.Forge, found: Release | None, spec: ReleaseSpec, plan: uploads.Plan, own: Attestations
) -> DryRun:
    log.info("Dry run; nothing is changed. Would:")
    lines = [
        releases.describe(found, spec),
        *uploads.describe_plan(plan),
        *own.describe([step.artifact for step in plan.steps]),
        *releases.describe_finish(forge, found, spec),
    ]
    for line in lines:
        log.info("  - %s", line)
    if spec.body is not None:
        log.info("Release notes (body_mode %s):\n%s", spec.body_mode, _indented(spec.body))
    return DryRun(spec.tag, lines)


def _indented(text: str) -> str:
    return "\n".join(f"    {line}" for line in text.splitlines())


def _warn_about_rate_limit(forge: forges.Forge, plan: uploads.Plan, own_files: int) -> None:
    """Say so before a run that cannot finish within the forge's hourly request limit."""
    limit = forge.hourly_request_limit
    # So far, plus the release's create or update and a publish, plus each upload (of as many files as the
    # forge takes in one) and delete.
    per_request = forge.max_files_per_upload
    needed = forge.http.calls + 2 + uploads.requests_needed(plan, per_request) + -(-own_files // per_request)
    if limit is not None and needed > limit:
        log.warning(
            "This run needs about %d API requests, and %s allows %d an hour on its public server: it will be"
            " answered 429 and wait for the limit to reset; upload fewer files per run or raise the limit"
            " on a self-hosted server.",
            needed,
            forge.title,
            limit,
        )
