"""The CI files users include or copy agree with action.yml, the one list of inputs.

The GitLab component and the classic template are written from action.yml by
``scripts/ci_templates.py``; these tests read action.yml as it is now, so an input added
there fails them until the generator is run again. The GitLab and GitFlic files are run with
real tools in ``test_containers.py``; SourceCraft CI has no local runner, so its example is
run here cube by cube, with the variables SourceCraft documents."""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml
from conftest import REPOSITORY, TOKEN, assert_no_token, stored

from release_action import __version__, manifest
from release_action.outputs import DOTENV_NAMES

ROOT = Path(__file__).resolve().parent.parent
GENERATOR = ROOT / "scripts" / "ci_templates.py"
#: What the GitLab jobs keep as artifacts, so their defaults there are file names, not "not written".
OUTPUT_FILES = {"dotenv_file": "release.env", "json_file": "release.json"}


def generate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(GENERATOR), *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


def component(path: Path = ROOT / "templates" / "release.yml") -> tuple[dict, dict]:
    header, body = yaml.safe_load_all(path.read_text(encoding="utf-8"))
    return header["spec"]["inputs"], body["release"]


def as_action_default(value: object) -> str:
    """A component default written the way action.yml writes it."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def test_the_gitlab_templates_are_what_the_generator_writes_from_action_yml():
    run = generate("--check")
    assert run.returncode == 0, f"run scripts/ci_templates.py:\n{run.stdout}{run.stderr}"


def test_every_input_is_a_typed_component_input_with_action_yml_s_default_mapped_to_its_variable():
    inputs, job = component()
    for name, spec in manifest.load().inputs.items():
        given = inputs[name]
        assert as_action_default(given["default"]) == OUTPUT_FILES.get(name, spec.default), name
        expected_type = {bool: "boolean", int: "number", float: "number", str: "string"}[type(given["default"])]
        assert given["type"] == expected_type, name
        block = f"$[[ inputs.{name} ]]"
        # A typed value is followed by a space, so that it is text in `variables` (the program strips it).
        assert job["variables"][spec.env_var] == (block if expected_type == "string" else f"{block} "), name
    assert set(inputs) - set(manifest.load().inputs) == {"stage", "image"}
    assert set(job["variables"]) == {spec.env_var for spec in manifest.load().inputs.values()}


def test_no_input_or_variable_is_written_into_a_shell_line_of_any_ci_file():
    """What a shell line holds could run: inputs reach the program only as variables, the release
    job's script is the program alone, and the examples' own lines name variables only inside quotes."""
    _, job = component()
    classic = yaml.safe_load((ROOT / ".gitlab-ci-template.yml").read_text())[".release-action"]
    assert job["script"] == classic["script"] == ["release-action"]
    _, _, cubes = sourcecraft_example()
    gitflic = yaml.safe_load((ROOT / "examples" / "gitflic" / "gitflic-ci.yaml").read_text())
    jobs = [job, classic, *cubes, *(value for value in gitflic.values() if isinstance(value, dict))]
    lines = [line for job in jobs for key in ("before_script", "script", "after_script") for line in job.get(key, [])]
    assert lines
    for line in lines:
        assert "$[[" not in line and "${{" not in line, line
        unquoted = re.sub(r"'[^']*'|\"[^\"]*\"", "", line)
        assert "$" not in unquoted, line


def test_the_outputs_are_a_dotenv_report_and_the_json_file_as_an_artifact():
    inputs, job = component()
    assert job["artifacts"] == {
        "paths": ["$[[ inputs.json_file ]]"],
        "reports": {"dotenv": "$[[ inputs.dotenv_file ]]"},
    }
    classic = yaml.safe_load((ROOT / ".gitlab-ci-template.yml").read_text())[".release-action"]
    assert classic["artifacts"] == {"paths": ["release.json"], "reports": {"dotenv": "release.env"}}
    assert {classic["variables"]["INPUT_DOTENV_FILE"], classic["variables"]["INPUT_JSON_FILE"]} == {
        "release.env",
        "release.json",
    }


def test_the_default_image_is_the_published_one_pinned_to_this_version():
    inputs, job = component()
    image = inputs["image"]["default"]
    assert image.startswith("ghcr.io/") and image.endswith(f"/release-action:{__version__}")
    assert job["image"]["name"] == "$[[ inputs.image ]]"
    classic = yaml.safe_load((ROOT / ".gitlab-ci-template.yml").read_text())[".release-action"]
    assert classic["variables"]["RELEASE_ACTION_IMAGE"] == image


def test_an_input_added_to_action_yml_reaches_both_templates_once_the_generator_runs(tmp_path):
    action = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))
    action["inputs"]["zip_files"] = {"description": "Zip each file.", "required": False, "default": "false"}
    action["inputs"]["chunk_mib"] = {"description": "Upload chunk size.", "required": False, "default": "8"}
    action["inputs"]["notes_url"] = {"description": "Link to notes.", "required": False, "default": ""}
    changed = tmp_path / "action.yml"
    changed.write_text(yaml.safe_dump(action, sort_keys=False), encoding="utf-8")

    stale = generate("--check", "--manifest", str(changed))
    assert (
        stale.returncode == 1 and "templates/release.yml" in stale.stderr and ".gitlab-ci-template.yml" in stale.stderr
    )
    assert "+    zip_files:" in stale.stdout

    assert generate("--manifest", str(changed), "--out", str(tmp_path)).returncode == 0
    inputs, job = component(tmp_path / "templates" / "release.yml")
    assert (inputs["zip_files"]["type"], inputs["zip_files"]["default"]) == ("boolean", False)
    assert (inputs["chunk_mib"]["type"], inputs["chunk_mib"]["default"]) == ("number", 8)
    assert job["variables"]["INPUT_NOTES_URL"] == "$[[ inputs.notes_url ]]"
    assert job["variables"]["INPUT_ZIP_FILES"] == "$[[ inputs.zip_files ]] "
    assert job["variables"]["INPUT_CHUNK_MIB"] == "$[[ inputs.chunk_mib ]] "
    assert job["script"] == ["release-action"]
    classic = (tmp_path / ".gitlab-ci-template.yml").read_text()
    assert "#   INPUT_ZIP_FILES" in classic and "#   INPUT_CHUNK_MIB" in classic


# -- GitHub workflows -------------------------------------------------------------------------------

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
#: A `uses:` line: the reference, then what follows it on the line (the version comment).
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>[^\s#]+)(?P<rest>.*)$")
#: A third-party action pinned the way Dependabot and Renovate keep it: by commit, the release in a comment.
PINNED = re.compile(r"[\w.-]+/[\w.-]+(/[^@\s]+)?@[0-9a-f]{40}")
VERSION_COMMENT = re.compile(r"\s+#\s*v\d+\.\d+\.\d+\s*")


def workflow_problems(text: str) -> list[str]:
    """What breaks the project's rules for third-party actions in one workflow, each as a sentence."""
    workflow = yaml.safe_load(text)
    lines = [USES_LINE.match(line) for line in text.splitlines()]
    lines = [line for line in lines if line]
    steps = [(job, step) for job in workflow["jobs"].values() for step in job.get("steps", [])]
    given = sorted(
        [step["uses"] for _, step in steps if "uses" in step]
        + [job["uses"] for job in workflow["jobs"].values() if "uses" in job]
    )
    # Every reference is read from its own line, so none can hide from the comment check.
    problems = [] if given == sorted(line["ref"] for line in lines) else [f"uses: not one per line: {given}"]
    for line in lines:
        if line["ref"].startswith("./"):
            continue
        if not PINNED.fullmatch(line["ref"]) or not VERSION_COMMENT.fullmatch(line["rest"]):
            problems.append(f"{line['ref']}{line['rest']} is not pinned as owner/repo@<commit> # vX.Y.Z")
    for job, step in steps:
        if (
            step.get("uses", "").startswith("actions/checkout@")
            and may_write_packages(job, workflow)
            and step.get("with", {}).get("persist-credentials") not in (False, "false")
        ):
            problems.append(f"{step['uses']} keeps the token in .git/config of a job that may write packages")
    return problems


def may_write_packages(job: dict, workflow: dict) -> bool:
    """Whether the job's token may write packages; with no permissions anywhere the repository's default decides,
    which may be write-all."""
    permissions = job.get("permissions", workflow.get("permissions"))
    if permissions is None or permissions == "write-all":
        return True
    return isinstance(permissions, dict) and permissions.get("packages") == "write"


def test_every_third_party_action_is_pinned_by_commit_and_checkout_keeps_no_token():
    assert [path.name for path in WORKFLOWS] == [
        "rehearsal-python.yml",
        "rehearsal-signed.yml",
        "rehearsal.yml",
        "release.yml",
    ]
    for path in WORKFLOWS:
        assert workflow_problems(path.read_text(encoding="utf-8")) == [], path.name


def test_a_tag_a_bare_commit_or_a_checkout_that_keeps_its_token_is_refused():
    workflow = """
on: push
permissions: {packages: write}
jobs:
  release:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@a26af69be951a213d495a4c3e4e4022e16d87065
      - uses: actions/cache@0057852bfaa89a56745cba8c7296529d2fc39830  # v4.3.0
        with: {path: x, key: y}
      - uses: ./
  read:
    runs-on: ubuntu-latest
    permissions: {contents: read}
    steps:
      - uses: actions/checkout@11d5960a326750d5838078e36cf38b85af677262 # v4.4.0
"""
    assert workflow_problems(workflow) == [
        "actions/checkout@v4 is not pinned as owner/repo@<commit> # vX.Y.Z",
        "actions/setup-python@a26af69be951a213d495a4c3e4e4022e16d87065 is not pinned as owner/repo@<commit> # vX.Y.Z",
        "actions/checkout@v4 keeps the token in .git/config of a job that may write packages",
    ]
    flow = "on: push\njobs:\n  a: {runs-on: x, steps: [{uses: actions/checkout@v4}]}\n"
    assert workflow_problems(flow)[0].startswith("uses: not one per line")


#: A pip that installs, and a build of the package, which without --no-isolation installs its backend
#: from the index.
PIP_INSTALL = re.compile(r"\bpip3?\s+install\b|-m\s+pip\s+install\b")
PACKAGE_BUILD = re.compile(r"scripts/package\.py|-m\s+build\b")
SECRET = re.compile(r"\bsecrets\s*[.\[]|\bgithub\.token\b")


def holds_a_secret(job: dict, workflow: dict) -> bool:
    """Whether a step of the job may be given a secret or the job's token, or the job may ask for an OIDC token."""
    permissions = job.get("permissions", workflow.get("permissions")) or {}
    may_ask = permissions == "write-all" or isinstance(permissions, dict) and permissions.get("id-token") == "write"
    return may_ask or bool(SECRET.search(yaml.safe_dump({"env": workflow.get("env"), "job": job})))


def index_problems(text: str) -> list[str]:
    """In each job that holds a secret, every `run:` line that installs from a package index anything but
    files pinned by hash, wheels only (an sdist's build would fetch its backend unpinned), or that builds
    the package with a backend fetched from the index; each as a sentence."""
    workflow = yaml.safe_load(text)
    problems = []
    for name, job in workflow["jobs"].items():
        if not holds_a_secret(job, workflow):
            continue
        for step in job.get("steps", []):
            for line in step.get("run", "").replace("\\\n", " ").splitlines():
                if PIP_INSTALL.search(line) and not ("--require-hashes" in line and "--only-binary :all:" in line):
                    problems.append(f"job {name} holds a secret and installs unpinned: {' '.join(line.split())}")
                if PACKAGE_BUILD.search(line) and "--no-isolation" not in line:
                    problems.append(
                        f"job {name} holds a secret and builds with a backend from the index: {' '.join(line.split())}"
                    )
    return problems


def test_no_job_that_holds_a_secret_runs_unpinned_code_from_a_package_index():
    for path in WORKFLOWS:
        assert index_problems(path.read_text(encoding="utf-8")) == [], path.name


def test_an_unpinned_install_or_an_isolated_build_beside_a_secret_is_refused():
    workflow = """
on: push
jobs:
  release:
    runs-on: ubuntu-latest
    steps:
      - run: |
          python3 -m pip install --quiet "build>=1.2,<2"
          venv/bin/pip install --require-hashes -r scripts/package-requirements.txt
          venv/bin/python -m pip install --require-hashes \\
            --only-binary :all: -r scripts/package-requirements.txt
          venv/bin/python scripts/package.py dist
          venv/bin/python scripts/package.py --no-isolation dist
      - uses: ./
        with: {token: "${{ secrets.GITFLIC_TOKEN }}"}
  pypi:
    runs-on: ubuntu-latest
    permissions: {id-token: write}
    steps:
      - run: python3 -m build
  test:
    runs-on: ubuntu-latest
    steps:
      - run: pip install "build>=1.2,<2" && python -m build
"""
    assert index_problems(workflow) == [
        'job release holds a secret and installs unpinned: python3 -m pip install --quiet "build>=1.2,<2"',
        "job release holds a secret and installs unpinned: venv/bin/pip install --require-hashes -r "
        "scripts/package-requirements.txt",
        "job release holds a secret and builds with a backend from the index: venv/bin/python scripts/package.py dist",
        "job pypi holds a secret and builds with a backend from the index: python3 -m build",
    ]


def test_the_release_s_build_tools_are_pinned_by_hash_and_setuptools_is_pyproject_s():
    lock = (ROOT / "scripts" / "package-requirements.txt").read_text(encoding="utf-8")
    requirements = re.findall(r"^([\w.-]+)==(\S+) \\\n\s+--hash=sha256:[0-9a-f]{64}$", lock, re.MULTILINE)
    lines = [line for line in lock.splitlines() if line and not line.startswith("#")]
    assert len(lines) == 2 * len(requirements) and {name for name, _ in requirements} >= {"build", "setuptools"}
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["build-system"]["requires"] == [f"setuptools=={dict(requirements)['setuptools']}"]


# -- what the install of the Python package is given ------------------------------------------------


def test_the_shell_example_gives_pip_the_settings_the_python_action_gives():
    """One list, written in two places: the composite action's (from scripts/ci_templates.py) and the one
    users copy from the GitFlic shell-executor example."""
    action = (ROOT / "python" / "action.yml").read_text(encoding="utf-8")
    [listed] = re.findall(r"for name in ([\w \\\n]+); do", action)
    example = (ROOT / "examples" / "gitflic-shell" / "gitflic-ci.yaml").read_text(encoding="utf-8")
    passed = re.findall(r"\$\{(\w+):\+\1=\"\$\1\"\}", example)
    assert sorted(passed) == sorted(listed.replace("\\", " ").split())


# -- SourceCraft CI ---------------------------------------------------------------------------------

SOURCECRAFT_EXAMPLE = ROOT / "examples" / "sourcecraft" / ".sourcecraft" / "ci.yaml"


def sourcecraft_example() -> tuple[dict, dict, list[dict]]:
    config = yaml.safe_load(SOURCECRAFT_EXAMPLE.read_text(encoding="utf-8"))
    trigger = config.get("on", config.get(True))  # YAML 1.1 reads a bare `on` as true
    workflow = config["workflows"]["release"]
    [task] = workflow["tasks"]
    return trigger, workflow, task["cubes"]


def test_the_sourcecraft_example_runs_on_version_tags_with_room_for_large_uploads():
    trigger, workflow, cubes = sourcecraft_example()
    [push] = trigger["push"]
    assert push["workflows"] == ["release"]
    assert any(fnmatch.fnmatchcase("v1.0.0", pattern) for pattern in push["filter"]["tags"])
    minutes = re.fullmatch(r"(\d+)m", workflow["settings"]["max_cube_duration"])
    assert minutes and int(minutes[1]) > 5, "a cube stops after 5 minutes by default"
    assert [cube["name"] for cube in cubes] == ["build", "release", "announce"]


def test_the_sourcecraft_example_uses_the_published_image_and_only_real_inputs():
    _, _, (_, release, _) = sourcecraft_example()
    inputs, _ = component()
    assert release["image"] == inputs["image"]["default"]
    variables = {spec.env_var for spec in manifest.load().inputs.values()}
    given = {name for name in release["env"] if name.startswith("INPUT_")}
    assert given and given <= variables, given - variables
    assert release["env"]["SOURCECRAFT_TOKEN"] == "${{ secrets.SOURCECRAFT_TOKEN }}"
    assert release["script"] == ["release-action"]


def test_the_sourcecraft_example_publishes_and_hands_its_outputs_to_the_next_cube(forge, tmp_path):
    _, _, (build, release, announce) = sourcecraft_example()
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "CHANGES.md").write_text("First release.\n")
    (workspace / "build.sh").write_text(
        "mkdir -p dist && head -c 50000 /dev/urandom > dist/tool.tar.gz && echo built > dist/build.log\n"
    )
    (workspace / "build.sh").chmod(0o755)
    handoff, outputs = tmp_path / "sourcecraft.env", tmp_path / "sourcecraft.output"
    handoff.touch()
    outputs.touch()
    # What SourceCraft CI gives every cube of a tag push (documented predefined variables).
    predefined = {
        "SOURCECRAFT_CI": "true",
        "SOURCECRAFT_COMMIT_REF": "refs/tags/v1.0.0",
        "SOURCECRAFT_COMMIT_REF_NAME": "v1.0.0",
        "SOURCECRAFT_REPO_URL": f"https://sourcecraft.dev/{REPOSITORY}.git",
        "SOURCECRAFT_WORKSPACE": str(workspace),
        "SOURCECRAFT_ENV": str(handoff),
        "SOURCECRAFT_OUTPUT": str(outputs),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    secrets = {"${{ secrets.SOURCECRAFT_TOKEN }}": TOKEN}
    # The one difference from SourceCraft itself: its API is the sandbox's.
    release_env = {
        **{k: secrets.get(v, v) for k, v in release["env"].items()},
        "INPUT_API_URL": forge.api_url("sourcecraft"),
    }

    log = run_cube(build, predefined, workspace) + run_cube(release, {**predefined, **release_env}, workspace)
    handed = dict(line.split("=", 1) for line in handoff.read_text().splitlines())
    # A later cube's ${{ cubes.release.outputs.KEY }}, as SourceCraft fills it in from $SOURCECRAFT_OUTPUT.
    released = multiline_outputs(outputs.read_text())
    announce_env = {
        name: re.sub(r"\$\{\{ *cubes\.release\.outputs\.(\w+) *\}\}", lambda m: released[m[1]], value)
        for name, value in announce.get("env", {}).items()
    }
    said = run_cube(announce, {**predefined, **handed, **announce_env}, workspace)

    assert set(handed) == set(DOTENV_NAMES) - {"RELEASE_SIGNING_KEY_ID"}  # nothing was signed
    assert list(stored(forge)) == ["tool.tar.gz"]
    [published] = forge.releases(REPOSITORY)
    assert published.body == "First release.\n" and not published.draft
    assert announce_env == {"RELEASE_PAGE": handed["RELEASE_URL"]}, "the example reads an output of the release cube"
    assert said.strip() == f"Released v1.0.0 at {released['release_url']} with 1 files"
    assert set(released) == set(manifest.load().outputs)
    assert_no_token(log, said, handoff.read_text(), outputs.read_text())


def multiline_outputs(text: str) -> dict[str, str]:
    """``name<<DELIMITER`` blocks, as SourceCraft (and GitHub) read an outputs file."""
    found, lines = {}, iter(text.splitlines())
    for line in lines:
        name, _, delimiter = line.partition("<<")
        found[name] = "\n".join(iter(lambda: next(lines), delimiter))
    return found


def run_cube(cube: dict, environ: dict[str, str], workspace: Path) -> str:
    output = ""
    for line in cube["script"]:
        run = subprocess.run(
            ["sh", "-c", line], env=environ, cwd=workspace, capture_output=True, text=True, timeout=120
        )
        output += run.stdout + run.stderr
        assert run.returncode == 0, f"cube {cube['name']}: {line}\n{output}"
    return output
