"""The CI files users include or copy agree with action.yml, the one list of inputs.

The GitLab component and the classic template are written from action.yml by
``scripts/ci_templates.py``; these tests read action.yml as it is now, so an input added
there fails them until the generator is run again. Running the files with real tools is in
``test_containers.py``."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from release_action import __version__, manifest

ROOT = Path(__file__).resolve().parent.parent
GENERATOR = ROOT / "scripts" / "ci_templates.py"
#: What the GitLab jobs keep as artifacts, so their defaults there are file names, not "not written".
OUTPUT_FILES = {"dotenv_file": "release.env", "json_file": "release.json"}


def generate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(GENERATOR), *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


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
    script = "\n".join(job["script"])
    for name, spec in manifest.load().inputs.items():
        given = inputs[name]
        assert as_action_default(given["default"]) == OUTPUT_FILES.get(name, spec.default), name
        expected_type = {bool: "boolean", int: "number", float: "number", str: "string"}[type(given["default"])]
        assert given["type"] == expected_type, name
        block = f"$[[ inputs.{name} ]]"
        if expected_type == "string":
            assert job["variables"][spec.env_var] == block, name
        else:  # typed values go through the script, where they are text
            assert f"export {spec.env_var}={block}\n" in script + "\n", name
    assert set(inputs) - set(manifest.load().inputs) == {"stage", "image"}
    assert job["script"][-1] == "release-action"


def test_the_outputs_are_a_dotenv_report_and_the_json_file_as_an_artifact():
    inputs, job = component()
    assert job["artifacts"] == {"paths": ["$[[ inputs.json_file ]]"], "reports": {"dotenv": "$[[ inputs.dotenv_file ]]"}}
    classic = yaml.safe_load((ROOT / ".gitlab-ci-template.yml").read_text())[".release-action"]
    assert classic["artifacts"] == {"paths": ["release.json"], "reports": {"dotenv": "release.env"}}
    assert {classic["variables"]["INPUT_DOTENV_FILE"], classic["variables"]["INPUT_JSON_FILE"]} == {
        "release.env", "release.json"}


def test_the_default_image_is_the_published_one_pinned_to_this_version():
    inputs, job = component()
    image = inputs["image"]["default"]
    assert image.startswith("ghcr.io/") and image.endswith(f"/release-action:{__version__}")
    assert job["image"]["name"] == "$[[ inputs.image ]]"
    classic = yaml.safe_load((ROOT / ".gitlab-ci-template.yml").read_text())[".release-action"]
    assert classic["variables"]["RELEASE_ACTION_IMAGE"] == image


def test_an_input_added_to_action_yml_reaches_both_templates_once_the_generator_runs(tmp_path):
    action = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))
    action["inputs"]["sign_files"] = {"description": "Sign each file.", "required": False, "default": "false"}
    action["inputs"]["chunk_mib"] = {"description": "Upload chunk size.", "required": False, "default": "8"}
    action["inputs"]["notes_url"] = {"description": "Link to notes.", "required": False, "default": ""}
    changed = tmp_path / "action.yml"
    changed.write_text(yaml.safe_dump(action, sort_keys=False), encoding="utf-8")

    stale = generate("--check", "--manifest", str(changed))
    assert stale.returncode == 1 and "templates/release.yml" in stale.stderr and ".gitlab-ci-template.yml" in stale.stderr
    assert "+    sign_files:" in stale.stdout

    assert generate("--manifest", str(changed), "--out", str(tmp_path)).returncode == 0
    inputs, job = component(tmp_path / "templates" / "release.yml")
    assert (inputs["sign_files"]["type"], inputs["sign_files"]["default"]) == ("boolean", False)
    assert (inputs["chunk_mib"]["type"], inputs["chunk_mib"]["default"]) == ("number", 8)
    assert job["variables"]["INPUT_NOTES_URL"] == "$[[ inputs.notes_url ]]"
    assert "export INPUT_SIGN_FILES=$[[ inputs.sign_files ]]" in job["script"]
    classic = (tmp_path / ".gitlab-ci-template.yml").read_text()
    assert "#   INPUT_SIGN_FILES" in classic and "#   INPUT_CHUNK_MIB" in classic
