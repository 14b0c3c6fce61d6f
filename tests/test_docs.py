"""The README and the documentation site say what the real files say.

The site is built with ``mkdocs build --strict``, so a broken link, a page left out or an example
file that is gone fails; the inputs and outputs reference is written from action.yml and fails
here when stale; every example the README or a page shows is a file of ``examples/`` that the
tests run (act, gitlab-ci-local, or SourceCraft's cubes one by one), included or compared whole;
and the two command lines that have no CI file are run here, as pasted, against the sandbox."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPOSITORY, TOKEN, assert_no_token, local_sha256, stored

from release_action import cli, errors, manifest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
GENERATOR = ROOT / "scripts" / "docs_reference.py"
#: Each README section with a quick start, and the file of examples/ it shows, whole.
QUICK_STARTS = {
    "## GitHub Actions": "examples/github/.github/workflows/release.yaml",
    "## GitLab CI: the component": "examples/gitlab/.gitlab-ci.yml",
    "## GitLab CI and GitFlic CI: the classic include": "examples/gitlab-classic/.gitlab-ci.yml",
    "## GitFlic CI": "examples/gitflic/gitflic-ci.yaml",
    "## SourceCraft CI": "examples/sourcecraft/.sourcecraft/ci.yaml",
    "## Gitea Actions": "examples/gitea/.gitea/workflows/release.yaml",
    "## Forgejo Actions": "examples/forgejo/.forgejo/workflows/release.yaml",
    "## GitVerse CI": "examples/gitverse/.gitverse/workflows/release.yaml",
}
#: Examples no quick start shows, each with the page that includes it.
ELSEWHERE = {"examples/gitflic-shell/gitflic-ci.yaml"}


def mkdocs(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )


def generate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(GENERATOR), *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


def sections(text: str) -> dict[str, str]:
    """Each `## ` heading of a Markdown text, with what follows it up to the next one."""
    parts = re.split(r"^(## .*)$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def fences(text: str) -> list[tuple[str, str]]:
    """Each fenced code block: its language and its text."""
    return re.findall(r"^```(\w*)[^\n]*\n(.*?)^```$", text, flags=re.M | re.S)


def example_body(relative: str) -> str:
    """The example as a user copies it: the file less its opening comment."""
    lines = (ROOT / relative).read_text(encoding="utf-8").splitlines(keepends=True)
    while lines and (lines[0].startswith("#") or not lines[0].strip()):
        lines.pop(0)
    return "".join(lines)


def command(section_title: str, page: str) -> str:
    """The one `sh` block of a README section, which the page in docs/ shows the same."""
    [(language, text)] = fences(sections(README.read_text())[section_title])
    assert language == "sh"
    assert text in (ROOT / "docs" / page).read_text(), f"docs/{page} shows another command than the README"
    return text


# -- the site ---------------------------------------------------------------------------------------


def test_the_site_builds_with_mkdocs_strict(tmp_path):
    run = mkdocs("build", "--strict", "--site-dir", str(tmp_path / "site"))
    assert run.returncode == 0, run.stdout + run.stderr
    page = (tmp_path / "site" / "ci" / "gitea-forgejo" / "index.html").read_text()
    assert "runs-on" in page and "--8&lt;--" not in page, "the examples are included, not named"


@pytest.mark.parametrize(
    "breakage, said",
    [
        ("[the inputs](inputs.md)", "inputs.md"),
        ('```yaml\n--8<-- "examples/gone.yaml"\n```', "examples/gone.yaml"),
    ],
)
def test_a_broken_link_or_a_missing_example_fails_the_build(tmp_path, breakage, said):
    for name in ("mkdocs.yml", "docs", "examples"):
        source = ROOT / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, tmp_path / name)
    with (tmp_path / "docs" / "failures.md").open("a") as page:
        page.write(f"\n{breakage}\n")
    run = mkdocs("build", "--strict", "--site-dir", str(tmp_path / "site"), cwd=tmp_path)
    assert run.returncode != 0 and said in run.stdout + run.stderr


def test_every_page_is_in_the_navigation():
    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]

    def pages(entries) -> list[str]:
        found = []
        for entry in entries:
            for value in entry.values():
                found += pages(value) if isinstance(value, list) else [value]
        return found

    assert sorted(pages(nav)) == sorted(str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md"))


# -- the reference, from action.yml -----------------------------------------------------------------


def test_the_reference_and_the_readme_s_inputs_are_what_the_generator_writes_from_action_yml():
    run = generate("--check")
    assert run.returncode == 0, f"run scripts/docs_reference.py:\n{run.stdout}{run.stderr}"


def _rows(text: str, heading: str) -> dict[str, str]:
    """The rows of the table under HEADING, by the name in their first cell."""
    table = sections(text)[heading]
    return {m.group(1): m.group(0) for m in re.finditer(r"^\| `(\w+)` \|.*$", table, flags=re.M)}


def test_every_input_and_output_of_action_yml_has_a_row_with_its_flag_variable_and_default():
    loaded = manifest.load()
    reference = (ROOT / "docs" / "reference.md").read_text()
    inputs = _rows(reference, "## Inputs")
    assert list(inputs) == list(loaded.inputs)
    for name, spec in loaded.inputs.items():
        default = f"`{spec.default}`" if spec.default else "–"
        assert inputs[name].startswith(f"| `{name}` | `{spec.flag}`, `{spec.env_var}` | {default} | "), name
        assert spec.description.replace("|", "\\|") in inputs[name], name
    assert list(_rows(reference, "## Outputs")) == list(loaded.outputs)


def test_an_input_added_to_action_yml_gets_its_row_once_the_generator_runs(tmp_path):
    action = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))
    action["inputs"]["zip_files"] = {"description": "Zip each file | or not.", "required": False, "default": "false"}
    changed = tmp_path / "action.yml"
    changed.write_text(yaml.safe_dump(action, sort_keys=False), encoding="utf-8")

    stale = generate("--check", "--manifest", str(changed))
    assert stale.returncode == 1 and "docs/reference.md" in stale.stderr
    assert generate("--manifest", str(changed), "--out", str(tmp_path)).returncode == 0
    row = _rows((tmp_path / "docs" / "reference.md").read_text(), "## Inputs")["zip_files"]
    assert row == "| `zip_files` | `--zip-files`, `INPUT_ZIP_FILES` | `false` | Zip each file \\| or not. |"


def test_help_says_what_action_yml_says():
    loaded = manifest.load()
    run = subprocess.run(
        [sys.executable, "-m", "release_action", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "100000"},
        timeout=60,
    )
    said = " ".join(run.stdout.split())
    assert run.returncode == 0 and loaded.description in said
    for spec in loaded.inputs.values():
        assert f"{spec.flag} " in said and " ".join(spec.description.split()) in said, spec.name


def test_the_product_has_one_name():
    name = manifest.load().name
    assert name == "release-action"
    assert README.read_text().splitlines()[0] == f"# {name}"
    assert (ROOT / "docs" / "index.md").read_text().splitlines()[0] == f"# {name}"
    assert yaml.safe_load((ROOT / "mkdocs.yml").read_text())["site_name"] == name
    assert yaml.safe_load((ROOT / "python" / "action.yml").read_text())["name"].startswith(f"{name} ")


def test_the_failures_page_gives_every_exit_code():
    codes = {0, errors.ActionError.exit_code, errors.InputError.exit_code, errors.Cancelled.exit_code, cli.EXIT_BUG}
    table = sections((ROOT / "docs" / "failures.md").read_text())["## Exit codes"]
    assert {int(code) for code in re.findall(r"^\| (\d+) \|", table, flags=re.M)} == codes


# -- the README, the front page ---------------------------------------------------------------------


def test_the_readme_is_a_front_page_with_its_first_example_within_sixty_lines():
    text = README.read_text()
    lines = text.splitlines()
    assert len(text.encode()) <= 25 * 1024, f"README.md is {len(text.encode())} bytes"
    first = next(number for number, line in enumerate(lines, 1) if line.startswith("```"))
    assert first <= 60, f"the first example starts on line {first}"
    setup = [line for line in lines[:12] if line.startswith("    scripts/")]
    assert [line.split()[0] for line in setup] == ["scripts/demo", "scripts/test"]
    assert "scripts/test" in (ROOT / ".ci" / "run").read_text()


def test_every_link_of_the_readme_leads_to_a_file_of_the_repository():
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README.read_text())
    local = [link for link in links if "://" not in link]
    assert local, "the README links into docs/"
    assert [link for link in local if not (ROOT / link).is_file()] == []


def test_each_quick_start_is_the_example_the_tests_run_and_its_page_includes_it():
    readme = sections(README.read_text())
    for title, example in QUICK_STARTS.items():
        [(language, text)] = fences(readme[title])
        assert language == "yaml" and text == example_body(example), f"{title}: not {example} as it is"
    shown = set(QUICK_STARTS.values()) | ELSEWHERE
    examples = {str(p.relative_to(ROOT)) for p in (ROOT / "examples").rglob("*") if p.is_file()}
    assert examples == shown, "an example the README and the docs do not show, or one that is gone"
    pages = "".join(p.read_text() for p in (ROOT / "docs").rglob("*.md"))
    for example in sorted(examples - ELSEWHERE):
        assert f'--8<-- "{example}"' in pages, f"no page includes {example}"


def test_the_readme_names_its_placeholders_before_the_first_example():
    """What a user replaces is named once, at the top: the rest of each example runs as it is."""
    readme = README.read_text()
    head = readme[: readme.index("## GitHub Actions")]
    for word in (
        "`OWNER`",
        "`v1`",
        "`v0.1.0`",
        "`0.1.0`",
        "`acme/tool`",
        "`make dist`",
        "`./build.sh`",
        "docker build -t",
    ):
        assert word in head, word
    for example in QUICK_STARTS.values():
        body = example_body(example)
        assert re.findall(r"OWNER(?!/release-action)", body) == [], f"{example}: OWNER in another form"


def test_the_python_package_s_command_publishes_as_pasted(forge, tmp_path):
    install, run_line = command("## The Python package", "ci/python.md").splitlines()
    assert "pip install" in install
    argv = shlex.split(run_line)
    assert argv[0] == "/tmp/release-action/bin/release-action"
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "tool.tar.gz").write_bytes(os.urandom(50_000))
    run = subprocess.run(
        [sys.executable, "-m", "release_action", *argv[1:], "--api-url", forge.api_url("gitflic")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": os.environ["PATH"], "GITFLIC_TOKEN": TOKEN, "HOME": str(tmp_path)},
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert sorted(stored(forge)) == ["SHA256SUMS", "tool.tar.gz"]
    assert_no_token(run.stdout + run.stderr)


def docker_run_inputs() -> tuple[dict[str, str], str]:
    """The README's `docker run` line: the variables it gives, with $GITFLIC_TOKEN as the shell reads
    it, and the image."""
    argv = shlex.split(command("## Any pipeline: `docker run`", "ci/docker.md"))
    assert argv[:2] == ["docker", "run"]
    given = {argv[i + 1].split("=", 1)[0]: argv[i + 1].split("=", 1)[1] for i, word in enumerate(argv) if word == "-e"}
    given = {key: value.replace("$GITFLIC_TOKEN", TOKEN) for key, value in given.items()}
    assert argv[argv.index("-v") + 1] == "$PWD:/work" and argv[argv.index("-w") + 1] == "/work"
    return given, argv[-1]


def test_the_docker_run_line_s_inputs_publish(forge, tmp_path):
    given, image = docker_run_inputs()
    assert image.startswith("ghcr.io/OWNER/release-action:")
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "tool.tar.gz").write_bytes(os.urandom(50_000))
    run = subprocess.run(
        [sys.executable, "-m", "release_action"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path), **given, "INPUT_API_URL": forge.api_url("gitflic")},
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert stored(forge) == {"tool.tar.gz": [local_sha256(tmp_path / "dist" / "tool.tar.gz")]}
    assert (tmp_path / "release.json").exists() and forge.releases(REPOSITORY)[0].tag == given["INPUT_TAG_NAME"]
