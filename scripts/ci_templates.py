"""Writes the GitLab front doors from action.yml, the one list of inputs:

- ``templates/release.yml``: a GitLab CI/CD component with typed ``spec: inputs:``;
- ``.gitlab-ci-template.yml``: the classic template (``include: remote/project``, GitFlic CI).

Run it after changing action.yml's inputs or the version; ``--check`` says whether the files
are up to date (the tests run it), without writing.

    .venv/bin/python scripts/ci_templates.py [--check] [--manifest action.yml] [--out .]
"""
from __future__ import annotations

import argparse
import difflib
import re
import sys
from pathlib import Path

import yaml

from release_action import __version__, manifest
from release_action.outputs import DOTENV_NAMES

ROOT = Path(__file__).resolve().parent.parent
#: Where the release workflow publishes the image. OWNER is the account that publishes it: change it here.
#: A release commit (scripts/release) names the real image in action.yml, and the templates pin that.
PUBLISHED_IMAGE = "ghcr.io/OWNER/release-action"
#: Output files the GitLab jobs keep: the dotenv report and the JSON artifact.
GITLAB_DEFAULTS = {"dotenv_file": "release.env", "json_file": "release.json"}
#: Inputs only the component has: how GitLab runs the job, not what the program does.
JOB_INPUTS = {
    "stage": {"description": "Stage the release job runs in.", "default": "deploy"},
    "image": {"description": "The release-action image; the default is the one published for this version."},
}
NUMBER = re.compile(r"\d+(\.\d+)?")
HEADER = "# Generated from action.yml by scripts/ci_templates.py: edit those and run it, never this file.\n"


def gitlab_input(spec: manifest.InputSpec) -> dict:
    """A component input: typed by its default, which is what action.yml says it holds."""
    default = GITLAB_DEFAULTS.get(spec.name, spec.default)
    if default in ("true", "false"):
        typed: dict = {"type": "boolean", "default": default == "true"}
    elif NUMBER.fullmatch(default):
        typed = {"type": "number", "default": float(default) if "." in default else int(default)}
    else:
        typed = {"type": "string", "default": default}
    if spec.name in GITLAB_DEFAULTS:
        typed["regex"] = r"^\S+$"  # the job's artifacts name these files, so they cannot be empty
    return {"description": spec.description, **typed}


def published_image(manifest_text: str) -> str:
    """The image the templates pin: the one a release commit's action.yml runs, else this version's."""
    image = (yaml.safe_load(manifest_text).get("runs") or {}).get("image", "")
    return image.removeprefix("docker://") if image.startswith("docker://") else f"{PUBLISHED_IMAGE}:{__version__}"


def component(specs: dict[str, manifest.InputSpec], image: str) -> str:
    clash = JOB_INPUTS.keys() & specs.keys()
    assert not clash, f"action.yml inputs {clash} clash with the component's own"
    job_inputs = {**JOB_INPUTS, "image": {**JOB_INPUTS["image"], "default": image}}
    inputs = {**job_inputs, **{name: gitlab_input(spec) for name, spec in specs.items()}}
    # Every input reaches the program as a variable, which no shell reads, so no value can run as
    # shell, even where the CI does not enforce `type:` (GitFlic may not). A boolean or number filling
    # a whole value keeps its type, which GitLab refuses in `variables`; followed by a space it is part
    # of a string, which GitLab and gitlab-ci-local both write as text ("6 "), and the program strips
    # the space from booleans and numbers. GitLab still checks the type of what the user gives.
    variables = {spec.env_var: f"$[[ inputs.{name} ]]" + ("" if inputs[name]["type"] == "string" else " ")
                 for name, spec in specs.items()}
    job = {
        "release": {
            "stage": "$[[ inputs.stage ]]",
            "image": {"name": "$[[ inputs.image ]]", "entrypoint": [""]},
            "variables": variables,
            "script": ["release-action"],
            "artifacts": {"paths": ["$[[ inputs.json_file ]]"], "reports": {"dotenv": "$[[ inputs.dotenv_file ]]"}},
            "rules": [{"if": "$CI_COMMIT_TAG"}],
        }
    }
    usage = f"""\
# GitLab CI/CD component: publish a release with its build artifacts to GitFlic or SourceCraft.
#
#   include:
#     - component: $CI_SERVER_FQDN/OWNER/release-action/release@v{__version__}
#       inputs:
#         files: "dist/*"
#
# Inputs are named and typed as in action.yml. The job `release` runs on tag pipelines; later
# jobs get {', '.join(DOTENV_NAMES)} from its dotenv
# report; the JSON file it names (release.json) lists every file published and is kept as an artifact.
"""
    return HEADER + usage + _dump({"spec": {"inputs": inputs}}) + "---\n" + _dump(job)


def classic(specs: dict[str, manifest.InputSpec], image: str) -> str:
    width = max(len(spec.env_var) for spec in specs.values())
    listed = "\n".join(f"#   {spec.env_var:<{width}}  {_shown(GITLAB_DEFAULTS.get(name, spec.default))}"
                       for name, spec in specs.items())
    usage = f"""\
# Include this file and extend the hidden job .release-action:
#
#   include:
#     - remote: https://raw.githubusercontent.com/OWNER/release-action/v{__version__}/.gitlab-ci-template.yml
#   release:
#     extends: .release-action
#     variables:
#       INPUT_FILES: "dist/*"
#
# The token is read from GITFLIC_TOKEN (a masked CI/CD variable), or CI_JOB_TOKEN inside GitFlic CI.
# Later jobs get {', '.join(DOTENV_NAMES)} from the dotenv report;
# the JSON file it names (release.json) lists every file published. Inputs are these variables
# (action.yml describes each), with their defaults here:
#
{listed}
"""
    job = {
        ".release-action": {
            "image": {"name": "${RELEASE_ACTION_IMAGE}", "entrypoint": [""]},
            "variables": {
                "RELEASE_ACTION_IMAGE": image,
                **{specs[name].env_var: value for name, value in GITLAB_DEFAULTS.items()},
            },
            "script": ["release-action"],
            "artifacts": {"paths": [GITLAB_DEFAULTS["json_file"]],
                          "reports": {"dotenv": GITLAB_DEFAULTS["dotenv_file"]}},
            "rules": [{"if": "$CI_COMMIT_TAG"}],
        }
    }
    return HEADER + usage + _dump(job)


def _shown(default: str) -> str:
    return default if default else "(empty)"


def _dump(data: dict) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120, default_flow_style=False)


def render(manifest_text: str) -> dict[str, str]:
    """Relative path -> the text it should hold."""
    specs, image = manifest.parse(manifest_text).inputs, published_image(manifest_text)
    return {"templates/release.yml": component(specs, image), ".gitlab-ci-template.yml": classic(specs, image)}


def main(argv: list[str]) -> int:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--check", action="store_true", help="only say whether the files are up to date")
    cli.add_argument("--manifest", type=Path, default=ROOT / "action.yml")
    cli.add_argument("--out", type=Path, default=ROOT)
    args = cli.parse_args(argv)
    stale = []
    for relative, text in render(args.manifest.read_text(encoding="utf-8")).items():
        path = args.out / relative
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current == text:
            continue
        stale.append(relative)
        if args.check:
            sys.stdout.writelines(difflib.unified_diff(current.splitlines(True), text.splitlines(True),
                                                       f"{relative} (as it is)", f"{relative} (from action.yml)"))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if args.check and stale:
        print(f"out of date with action.yml: {', '.join(stale)}; run scripts/ci_templates.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
