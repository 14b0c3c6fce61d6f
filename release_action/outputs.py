"""Outputs for later pipeline steps, in each CI system's own form.

GitHub: ``$GITHUB_OUTPUT`` and a Markdown table in ``$GITHUB_STEP_SUMMARY``.
SourceCraft CI: ``KEY=VALUE`` lines appended to ``$SOURCECRAFT_ENV``, which become later cubes' variables,
and the outputs of action.yml appended to ``$SOURCECRAFT_OUTPUT``, which later cubes read as
``${{ cubes.<cube>.outputs.<key> }}`` (in GitHub's multi-line form, which it documents too).
Others: a dotenv file (GitLab's ``artifacts:reports:dotenv``) and a JSON file,
at the paths the inputs name.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import unicodedata
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import quote

from .errors import ActionError, InputError
from .forges import Asset
from .inputs import Inputs
from .log import printable
from .publish import DryRun, Result
from .uploads import REMOVED, Outcome

log = logging.getLogger(__name__)


def values(result: Result) -> dict[str, str]:
    """The outputs named in action.yml, as strings."""
    return {
        "release_id": result.release.id,
        "release_url": result.release.url,
        "tag_name": result.release.tag,
        "assets": json.dumps(assets(result), ensure_ascii=False, separators=(",", ":")),
        "signing_key_id": result.signing_key_id or "",
    }


def assets(result: Result) -> list[dict]:
    return [
        {
            "name": outcome.asset.name,
            "size": outcome.asset.size,
            "sha256": outcome.sha256,
            "id": outcome.asset.id,
            "url": outcome.asset.url,
            "status": outcome.status,
        }
        for outcome in result.outcomes
    ]


def targets(inputs: Inputs, environ: Mapping[str, str]) -> dict[str, Path]:
    """Where outputs go: what names each file, and the file."""
    named = {
        "GITHUB_OUTPUT": environ.get("GITHUB_OUTPUT"),
        "GITHUB_STEP_SUMMARY": environ.get("GITHUB_STEP_SUMMARY"),
        "SOURCECRAFT_ENV": environ.get("SOURCECRAFT_ENV"),
        "SOURCECRAFT_OUTPUT": environ.get("SOURCECRAFT_OUTPUT"),
        "input 'dotenv_file'": inputs.dotenv_file,
        "input 'json_file'": inputs.json_file,
    }
    return {what: Path(path) for what, path in named.items() if path}


def check(inputs: Inputs, environ: Mapping[str, str]) -> None:
    """Before anything changes: every output file can be written, or the run stops here."""
    for what, path in targets(inputs, environ).items():
        problem = _unwritable(path)
        if problem:
            raise InputError(f"{what} names {path}, which cannot be written: {problem}.")


def _unwritable(path: Path) -> str | None:
    if path.is_dir():
        return "it is a directory"
    if path.exists():
        try:
            with path.open("a", encoding="utf-8"):  # opened, not written: nothing changes
                return None
        except OSError as error:
            return error.strerror or str(error)
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"{ancestor} is not a directory"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return f"{ancestor} is not writable"
    return None


def write(result: Result, inputs: Inputs, environ: Mapping[str, str], redact: Callable[[str], str]) -> None:
    """Write every output; one that fails does not stop the others, and the run then fails saying which.

    Each value the forge gave passes through ``redact``, which replaces one holding a secret whole: a
    forge may echo a secret in any answer (a name, a link), and outputs are read by later steps and
    kept as artifacts. Value by value, never the written text, so that a passphrase that is a word
    ("release") or JSON's own syntax ("true", '": "') cannot break a key, a number or a line."""
    masked = []

    def redact_noting(value: str) -> str:
        shown = redact(value)
        if shown != value:
            masked.append(value)
        return shown

    result = _redacted(result, inputs.tag_name, redact_noting)  # before any format escapes a secret out of its sight
    if masked:
        # Said, so that a later step handed *** for a link knows why: most often a short passphrase that
        # is also a word of the release's address.
        log.warning(
            "%d output value(s) from the forge held a secret (the token, the signing key or its passphrase)"
            " and are written as ***.",
            len(masked),
        )
    outputs = values(result)
    where = targets(inputs, environ)
    texts = {
        "GITHUB_OUTPUT": lambda: github_output(outputs),
        "GITHUB_STEP_SUMMARY": lambda: summary(result),
        "SOURCECRAFT_ENV": lambda: dotenv(outputs, result, inputs.json_file),
        "SOURCECRAFT_OUTPUT": lambda: github_output(outputs),
        "input 'dotenv_file'": lambda: dotenv(outputs, result, inputs.json_file),
        "input 'json_file'": lambda: (
            json.dumps({**outputs, "assets": assets(result)}, ensure_ascii=False, indent=2) + "\n"
        ),
    }
    failed = []
    for what, path in where.items():
        try:
            text = texts[what]()
            if not what.startswith("input "):  # the CI system's own file: others write to it too
                _append(path, text)
            else:
                _write(path, text)
        except OSError as error:
            failed.append(f"{path} ({what}): {error.strerror or error}")
    log.info("Outputs: release_id=%s release_url=%s", outputs["release_id"], outputs["release_url"])
    if failed:
        raise ActionError(
            f"Release {result.release.tag} is published at {result.release.url}, but these outputs"
            f" could not be written: {'; '.join(failed)}."
        )


def _redacted(result: Result, tag: str, redact: Callable[[str], str]) -> Result:
    """The result with every value that came from the forge redacted; the tag asked for and the names
    of the files published are the user's own, and sizes, hashes made here and the key id the run's."""
    release = result.release
    release = dataclasses.replace(
        release,
        id=redact(release.id),
        url=redact(release.url),
        tag=release.tag if release.tag == tag else redact(release.tag),
    )
    outcomes = [dataclasses.replace(outcome, asset=_redacted_asset(outcome, redact)) for outcome in result.outcomes]
    return dataclasses.replace(result, release=release, outcomes=outcomes)


def _redacted_asset(outcome: Outcome, redact: Callable[[str], str]) -> Asset:
    asset = outcome.asset
    own_name = outcome.artifact is not None and asset.name == outcome.artifact.name
    return dataclasses.replace(
        asset,
        id=redact(asset.id),
        name=asset.name if own_name else redact(asset.name),
        url=redact(asset.url),
        # A removed asset's SHA-256 is the forge's.
        digests={algorithm: redact(value) for algorithm, value in asset.digests.items()},
    )


def github_output(outputs: Mapping[str, str]) -> str:
    """GitHub's multi-line-safe form: name<<DELIMITER, value, DELIMITER."""
    lines = []
    for name, value in outputs.items():
        delimiter = f"ghadelimiter_{os.urandom(16).hex()}"
        lines += [f"{name}<<{delimiter}", value, delimiter]
    return "\n".join(lines) + "\n"


#: The variables of the dotenv report and of ``$SOURCECRAFT_ENV``; the last only when ``json_file`` is set.
DOTENV_NAMES = (
    "RELEASE_ID",
    "RELEASE_URL",
    "RELEASE_TAG_NAME",
    "RELEASE_ASSET_COUNT",
    "RELEASE_ASSETS_FILE",
    "RELEASE_SIGNING_KEY_ID",
)


def dotenv(outputs: Mapping[str, str], result: Result, json_file: Path | None) -> str:
    """KEY=value lines, one line each, small whatever the file count: GitLab takes at most 5 KiB
    and 20 variables in a dotenv report. The full asset list is in the JSON file it names.
    SourceCraft's ``$SOURCECRAFT_ENV`` takes the same lines."""
    held = sum(outcome.status != REMOVED for outcome in result.outcomes)  # removed assets are not in the release
    found = (
        outputs["release_id"],
        outputs["release_url"],
        outputs["tag_name"],
        str(held),
        str(json_file) if json_file else None,
        outputs["signing_key_id"] or None,
    )
    lines = {name: value for name, value in zip(DOTENV_NAMES, found, strict=True) if value is not None}
    return "".join(f"{key}={single_line(value)}\n" for key, value in lines.items())


def single_line(value: str) -> str:
    """The value with every line break and control character made a space, so that no value
    a forge sends can end its line early and add a variable of its own."""
    return "".join(" " if unicodedata.category(char) in ("Cc", "Zl", "Zp") else char for char in value)


#: Characters that Markdown (GitHub's flavour, tables included) would read as markup inside a line.
MARKDOWN = re.compile(r"([\\`*_{}\[\]()<>|~&])")


def markdown_text(text: str) -> str:
    """Text shown as itself in a Markdown table cell or link text."""
    return MARKDOWN.sub(r"\\\1", " ".join(text.splitlines()))


def markdown_url(url: str) -> str:
    """A link target that cannot end the link, the table cell or the line early: everything but the
    characters a URL is made of is percent-encoded (parentheses and ``|`` too, which Markdown reads)."""
    return quote(url, safe=":/?#[]@!$&'*+,;=%~")


def readable_size(size: int) -> str:
    """A size as people read it: bytes, KiB or MiB, the exact count beside the rounded ones."""
    if size < 1 << 10:
        return f"{size} bytes"
    unit, shift = ("MiB", 20) if size >= 1 << 20 else ("KiB", 10)
    return f"{size / (1 << shift):.1f} {unit} ({size} bytes)"


def summary(result: Result) -> str:
    rows = [
        f"| [{markdown_text(o.asset.name)}]({markdown_url(o.asset.url)}) | {readable_size(o.asset.size)} |"
        f" `{o.sha256}` | {o.status} |"
        for o in result.outcomes
    ]
    table = ["| File | Size | SHA-256 | Status |", "|---|---:|---|---|", *rows] if rows else ["No files."]
    heading = f"### Release [{markdown_text(result.release.tag)}]({markdown_url(result.release.url)})"
    signed = [f"Signed with the key `{result.signing_key_id}`.", ""] if result.signing_key_id else []
    return "\n".join([heading, "", *table, "", *signed]) + "\n"


def dry_run_summary(dry_run: DryRun, redact: Callable[[str], str]) -> str:
    lines = [f"- {markdown_text(printable(redact(line)))}" for line in dry_run.lines]
    return (
        "\n".join(
            [f"### Dry run of release {markdown_text(dry_run.tag)}: nothing was changed", "", "Would:", *lines, ""]
        )
        + "\n"
    )


def failure_summary(sentence: str) -> str:
    # A file name that is not UTF-8 may be in the sentence: shown as the log shows it.
    return "\n".join(["### release-action failed", "", markdown_text(printable(sentence)), ""]) + "\n"


def summarize(environ: Mapping[str, str], text: str) -> None:
    """Add to the step summary, where there is one; a summary that cannot be written is no new failure."""
    path = environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    try:
        _append(Path(path), text)
    except OSError as error:
        log.warning("The step summary %s could not be written: %s.", path, error.strerror or error)


def _append(path: Path, text: str) -> None:
    """Add lines to a file that earlier steps wrote too: on a line of their own, even when the last
    step's last line has no line break (``VERSION=1.2`` must not become ``VERSION=1.2RELEASE_ID=...``)."""
    with path.open("a+b") as handle:
        handle.seek(0, os.SEEK_END)
        if handle.tell():
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":
                text = "\n" + text
        handle.write(text.encode("utf-8"))


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
