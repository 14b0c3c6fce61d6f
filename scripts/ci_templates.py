"""Writes the other front doors from action.yml, the one list of inputs:

- ``templates/release.yml``: a GitLab CI/CD component with typed ``spec: inputs:``;
- ``.gitlab-ci-template.yml``: the classic template (``include: remote/project``, GitFlic CI);
- ``python/action.yml``: the composite action for runners without Docker (GitVerse CI, Gitea and
  Forgejo runners without it), running the Python package in a private venv.

Run it after changing action.yml's inputs or the version; ``--check`` says whether the files
are up to date (the tests run it), without writing.

    .venv/bin/python scripts/ci_templates.py [--check] [--manifest action.yml] [--out .]
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
import textwrap
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
    variables = {
        spec.env_var: f"$[[ inputs.{name} ]]" + ("" if inputs[name]["type"] == "string" else " ")
        for name, spec in specs.items()
    }
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
# GitLab CI/CD component: publish a release with its build artifacts to GitFlic, SourceCraft,
# GitVerse, Gitea or Forgejo.
#
#   include:
#     - component: $CI_SERVER_FQDN/OWNER/release-action/release@v{__version__}
#       inputs:
#         files: "dist/*"
#
# Inputs are named and typed as in action.yml. The job `release` runs on tag pipelines; later
# jobs get {", ".join(DOTENV_NAMES)} from its dotenv
# report; the JSON file it names (release.json) lists every file published and is kept as an artifact.
"""
    return HEADER + usage + _dump({"spec": {"inputs": inputs}}) + "---\n" + _dump(job)


def classic(specs: dict[str, manifest.InputSpec], image: str) -> str:
    width = max(len(spec.env_var) for spec in specs.values())
    listed = "\n".join(
        f"#   {spec.env_var:<{width}}  {_shown(GITLAB_DEFAULTS.get(name, spec.default))}"
        for name, spec in specs.items()
    )
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
# Later jobs get {", ".join(DOTENV_NAMES)} from the dotenv report;
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
            "artifacts": {
                "paths": [GITLAB_DEFAULTS["json_file"]],
                "reports": {"dotenv": GITLAB_DEFAULTS["dotenv_file"]},
            },
            "rules": [{"if": "$CI_COMMIT_TAG"}],
        }
    }
    return HEADER + usage + _dump(job)


#: What the install's commands are given besides PATH and HOME, from the job's environment when set
#: there: where python3's library is (actions/setup-python sets LD_LIBRARY_PATH with PATH), where pip
#: finds packages and how it trusts the index, and the proxies that may be the only way to it. Nothing
#: else: no INPUT_* variable, no token in the environment, no PYTHONPATH and no PIP_CONFIG_FILE.
INSTALL_ENVIRONMENT = (
    "LD_LIBRARY_PATH",
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "PIP_FIND_LINKS",
    "PIP_NO_INDEX",
    "PIP_TRUSTED_HOST",
    "PIP_CERT",
    "PIP_CLIENT_CERT",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
)
#: The composite action installs, then runs, then removes. act, and Gitea's and Forgejo's act_runner
#: forked from it, give every step of a composite action an INPUT_* variable for each input, the
#: token and the signing key among them, as does a workflow that puts a token in the job's env; so
#: every command but the program's starts from an environment built from nothing (env -i), and pip,
#: and the code it runs from the index (setuptools, through build isolation), see no secret. HOME is
#: the venv's new directory: a pip.conf, .netrc or usercustomize that another job left in the
#: runner's home is not read. Python runs isolated (-I), the program too: no PYTHONPATH and no
#: module in the working directory is imported. The venv is new for each use, in a directory no
#: one else can have planted (mktemp, mode 0700).
INSTALL_SCRIPT = """\
set -euo pipefail
venv=$(mktemp -d "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/release-action-XXXXXXXX")
echo "venv=$venv" >> "$GITHUB_OUTPUT"
# The runner gives this step every input, secrets too, as INPUT_*: each command below starts from an
# environment built from nothing, with a HOME of its own and the settings that reach the index.
clean=(env -i "PATH=$PATH" "HOME=$venv")
for name in {names}; do
  if [ -n "${!name:-}" ]; then clean+=("$name=${!name}"); fi
done
# python3 may be a version manager's shim (pyenv, asdf) that finds its Python through the runner's
# home: asked with that home, and nothing secret, it names the interpreter used from then on.
python=$("${clean[@]}" "HOME=$HOME" python3 -I -c 'import sys; sys.version_info >= (3, 11) and print(sys.executable)' \\
  2>/dev/null) || true
if [ -z "$python" ]; then
  echo "::error::release-action needs Python 3.11 or newer as python3 on the runner; add actions/setup-python before it."
  exit 2
fi
# The action's own source, at the ref the workflow pins; RELEASE_ACTION_PACKAGE in the job's env may
# name another (release-action==X.Y.Z from your index).
package=${RELEASE_ACTION_PACKAGE:-$GITHUB_ACTION_PATH/..}
"${clean[@]}" "$python" -I -m venv "$venv"
if ! "${clean[@]}" "$venv/bin/python" -I -m pip install --quiet --disable-pip-version-check --no-cache-dir "$package"; then
  echo "::error::release-action could not be installed from $package; pip says why above."
  exit 1
fi
""".replace("{names}", " \\\n    ".join(textwrap.wrap(" ".join(INSTALL_ENVIRONMENT), 100)))
RUN_SCRIPT = '"$RELEASE_ACTION_VENV/bin/python" -I -m release_action\n'
CLEANUP_SCRIPT = 'env -i "PATH=$PATH" rm -rf -- "$RELEASE_ACTION_VENV"\n'


def composite(manifest_text: str) -> str:
    """The same inputs and outputs as action.yml, in a composite action that runs the package."""
    action = yaml.safe_load(manifest_text)
    specs = manifest.parse(manifest_text).inputs
    env = {spec.env_var: "${{ inputs." + name + " }}" for name, spec in specs.items()}
    outputs = {
        name: {**spec, "value": "${{ steps.run.outputs." + name + " }}"}
        for name, spec in (action.get("outputs") or {}).items()
    }
    composite_action = {
        "name": f"{action['name']} (without Docker)",
        "description": action["description"] + " Runs the Python package (3.11+) instead of the container.",
        "branding": action.get("branding", {}),
        "inputs": action["inputs"],
        "outputs": outputs,
        "runs": {
            "using": "composite",
            "steps": [
                {"id": "install", "shell": "bash", "run": INSTALL_SCRIPT},
                {
                    "id": "run",
                    "shell": "bash",
                    "env": {**env, "RELEASE_ACTION_VENV": "${{ steps.install.outputs.venv }}"},
                    "run": RUN_SCRIPT,
                },
                {
                    "if": "always() && steps.install.outputs.venv != ''",
                    "shell": "bash",
                    "env": {"RELEASE_ACTION_VENV": "${{ steps.install.outputs.venv }}"},
                    "run": CLEANUP_SCRIPT,
                },
            ],
        },
    }
    return HEADER + _dump(composite_action, literal_blocks=True)


def _shown(default: str) -> str:
    return default if default else "(empty)"


class _LiteralDumper(yaml.SafeDumper):
    """Writes a string of several lines as a ``|`` block, as a person writes a step's script."""


_LiteralDumper.add_representer(
    str,
    lambda dumper, text: dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None),
)


def _dump(data: dict, *, literal_blocks: bool = False) -> str:
    return yaml.dump(
        data,
        Dumper=_LiteralDumper if literal_blocks else yaml.SafeDumper,
        sort_keys=False,
        allow_unicode=True,
        width=120,
        default_flow_style=False,
    )


def render(manifest_text: str) -> dict[str, str]:
    """Relative path -> the text it should hold."""
    specs, image = manifest.parse(manifest_text).inputs, published_image(manifest_text)
    return {
        "templates/release.yml": component(specs, image),
        ".gitlab-ci-template.yml": classic(specs, image),
        "python/action.yml": composite(manifest_text),
    }


def sync(rendered: dict[str, str], out: Path, check: bool, script: str) -> int:
    """Writes each file that differs from what it should hold; with CHECK, shows the difference instead
    and returns 1 if any does."""
    stale = []
    for relative, text in rendered.items():
        path = out / relative
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current == text:
            continue
        stale.append(relative)
        if check:
            sys.stdout.writelines(
                difflib.unified_diff(
                    current.splitlines(True),
                    text.splitlines(True),
                    f"{relative} (as it is)",
                    f"{relative} (from action.yml)",
                )
            )
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if check and stale:
        print(f"out of date with action.yml: {', '.join(stale)}; run {script}", file=sys.stderr)
        return 1
    return 0


def arguments(argv: list[str], doc: str) -> argparse.Namespace:
    cli = argparse.ArgumentParser(description=doc.splitlines()[0])
    cli.add_argument("--check", action="store_true", help="only say whether the files are up to date")
    cli.add_argument("--manifest", type=Path, default=ROOT / "action.yml")
    cli.add_argument("--out", type=Path, default=ROOT)
    return cli.parse_args(argv)


def main(argv: list[str]) -> int:
    args = arguments(argv, __doc__)
    return sync(render(args.manifest.read_text(encoding="utf-8")), args.out, args.check, "scripts/ci_templates.py")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
