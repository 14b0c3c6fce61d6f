"""Writes the inputs and outputs reference from action.yml, the one list of inputs, as
scripts/ci_templates.py writes the CI templates from it:

- ``docs/reference.md``: a row for every input and every output, with its flag, variable and default;
- ``README.md``: between its two markers, the few inputs every user sets.

Run it after changing action.yml's inputs or outputs; ``--check`` says whether the files are up
to date (the tests run it), without writing.

    .venv/bin/python scripts/docs_reference.py [--check] [--manifest action.yml] [--out .]
"""

from __future__ import annotations

import sys
from pathlib import Path

from ci_templates import arguments, sync  # the same way of writing and checking, beside this file

from release_action import manifest
from release_action.outputs import DOTENV_NAMES

ROOT = Path(__file__).resolve().parent.parent
GENERATED = "Generated from action.yml by scripts/docs_reference.py: edit those and run it, never this text."
#: The inputs the README's front page lists: the ones every user sets, or meets first when a run stops.
FRONT_PAGE_INPUTS = ("token", "repository", "tag_name", "files", "checksums", "forge", "api_url")
README_BEGIN = "<!-- inputs: " + GENERATED + " -->\n"
README_END = "<!-- end of the generated inputs -->\n"

INTRO = """\
`action.yml` is the one list; the program reads it at run time, so every way
of running it has the same names and defaults. Each input is a flag
(`--tag-name v1`) or a variable (`INPUT_TAG_NAME=v1`); flags win, then
variables, then the CI context, then the default. A default shown as – is
"not set": the program then takes the value from the CI that runs it (see
[What each CI provides](ci/index.md#what-each-ci-provides)) or from the forge.
`release-action --help` prints the same descriptions.
"""

AFTER_INPUTS = """\
Booleans take true/false, yes/no, 1/0 in any case. An `INPUT_` variable that
looks like a misspelt input (`INPUT_FILE`, `input_files`, `INPUT_DRY-RUN`) is an input error naming the
right one, before any request: the input it meant would otherwise be left unset. Flags are never
abbreviated (`--file` is not `--files`), and a mistyped one is named with the flag it resembles; the
word after it, which may be a secret, is never shown.
"""


def _cell(text: str) -> str:
    """Text that stays in its table cell: a `|` would end it, even inside a code span."""
    return text.replace("\n", " ").replace("|", "\\|")


def _default(spec: manifest.InputSpec) -> str:
    return f"`{spec.default}`" if spec.default else "–"


def input_rows(specs: dict[str, manifest.InputSpec], names: tuple[str, ...] | None = None) -> str:
    rows = [
        f"| `{name}` | `{spec.flag}`, `{spec.env_var}` | {_default(spec)} | {_cell(spec.description)} |"
        for name, spec in specs.items()
        if names is None or name in names
    ]
    return "| input | flag, variable | default | what it does |\n|---|---|---|---|\n" + "\n".join(rows) + "\n"


def reference(loaded: manifest.Manifest) -> str:
    outputs = "\n".join(f"| `{name}` | {_cell(description)} |" for name, description in loaded.outputs.items())
    dotenv = ", ".join(f"`{name}`" for name in DOTENV_NAMES)
    return f"""\
# Inputs and outputs

<!-- {GENERATED} -->

{loaded.description}

{INTRO}
## Inputs

{input_rows(loaded.inputs)}
{AFTER_INPUTS}
## Outputs

| output | what it holds |
|---|---|
{outputs}

On GitHub-style runners they are step outputs (`steps.ID.outputs.NAME`). Elsewhere `json_file`
writes them all as one JSON object, and `dotenv_file` (GitLab's dotenv report) and SourceCraft's
`$SOURCECRAFT_ENV` get {dotenv}: see [Outputs](outputs.md).
"""


def readme(current: str, loaded: manifest.Manifest) -> str:
    """The README with the front page's inputs written anew between its markers."""
    if README_BEGIN not in current or README_END not in current:
        raise SystemExit(f"README.md has lost its markers:\n{README_BEGIN}{README_END}")
    head, rest = current.split(README_BEGIN, 1)
    _, tail = rest.split(README_END, 1)
    return head + README_BEGIN + input_rows(loaded.inputs, FRONT_PAGE_INPUTS) + README_END + tail


def render(manifest_text: str, out: Path) -> dict[str, str]:
    """Relative path -> the text it should hold."""
    loaded = manifest.parse(manifest_text)
    missing = set(FRONT_PAGE_INPUTS) - set(loaded.inputs)
    assert not missing, f"the README lists inputs action.yml lacks: {missing}"
    current = (out / "README.md") if (out / "README.md").exists() else ROOT / "README.md"
    return {"docs/reference.md": reference(loaded), "README.md": readme(current.read_text(encoding="utf-8"), loaded)}


def main(argv: list[str]) -> int:
    args = arguments(argv, __doc__)
    return sync(
        render(args.manifest.read_text(encoding="utf-8"), args.out), args.out, args.check, "scripts/docs_reference.py"
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
