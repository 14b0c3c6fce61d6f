"""Outputs for later pipeline steps, in each CI system's own form.

GitHub: ``$GITHUB_OUTPUT`` and a Markdown table in ``$GITHUB_STEP_SUMMARY``.
Others: a dotenv file (GitLab's ``artifacts:reports:dotenv``) and a JSON file,
at the paths the inputs name.
"""
from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path
from typing import Mapping

from .inputs import Inputs
from .publish import Result

log = logging.getLogger(__name__)


def values(result: Result) -> dict[str, str]:
    """The outputs named in action.yml, as strings."""
    return {
        "release_id": result.release.id,
        "release_url": result.release.url,
        "tag_name": result.release.tag,
        "assets": json.dumps(assets(result), ensure_ascii=False, separators=(",", ":")),
    }


def assets(result: Result) -> list[dict]:
    return [
        {
            "name": outcome.asset.name,
            "size": outcome.asset.size,
            "sha256": outcome.artifact.ensure_digests().sha256,
            "id": outcome.asset.id,
            "url": outcome.asset.url,
            "status": outcome.status,
        }
        for outcome in result.outcomes
    ]


def write(result: Result, inputs: Inputs, environ: Mapping[str, str]) -> None:
    outputs = values(result)
    if environ.get("GITHUB_OUTPUT"):
        _append(Path(environ["GITHUB_OUTPUT"]), github_output(outputs))
    if environ.get("GITHUB_STEP_SUMMARY"):
        _append(Path(environ["GITHUB_STEP_SUMMARY"]), summary(result))
    if inputs.dotenv_file:
        _write(inputs.dotenv_file, dotenv(outputs))
    if inputs.json_file:
        document = {**outputs, "assets": assets(result)}
        _write(inputs.json_file, json.dumps(document, ensure_ascii=False, indent=2) + "\n")
    log.info("Outputs: release_id=%s release_url=%s", outputs["release_id"], outputs["release_url"])


def github_output(outputs: Mapping[str, str]) -> str:
    """GitHub's multi-line-safe form: name<<DELIMITER, value, DELIMITER."""
    lines = []
    for name, value in outputs.items():
        delimiter = f"ghadelimiter_{uuid.uuid4()}"
        lines += [f"{name}<<{delimiter}", value, delimiter]
    return "\n".join(lines) + "\n"


def dotenv(outputs: Mapping[str, str]) -> str:
    """KEY=value lines; GitLab's dotenv reports take neither quotes nor newlines, so values are one line."""
    return "".join(f"RELEASE_{name.upper().removeprefix('RELEASE_')}={' '.join(value.splitlines())}\n"
                   for name, value in outputs.items())


def summary(result: Result) -> str:
    rows = [
        f"| [{o.asset.name}]({o.asset.url}) | {o.asset.size} | `{o.artifact.ensure_digests().sha256[:16]}…` | {o.status} |"
        for o in result.outcomes
    ]
    table = ["| File | Bytes | SHA-256 | Status |", "|---|---:|---|---|", *rows] if rows else ["No files."]
    heading = f"### Release [{result.release.tag}]({result.release.url})"
    return "\n".join([heading, "", *table, ""]) + "\n"


def _append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
