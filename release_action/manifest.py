"""The manifest, ``action.yml``: the one list of the program's inputs and outputs.

GitHub reads it to run the action; the program reads it at run time for names
and defaults, so every way of running it (GitHub, GitLab, ``docker run``)
behaves the same and the two cannot drift apart.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources

import yaml


@dataclass(frozen=True)
class InputSpec:
    name: str
    description: str
    default: str

    @property
    def env_var(self) -> str:
        """The variable GitHub sets for this input, also used by ``docker run -e`` and GitLab."""
        return "INPUT_" + self.name.upper()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


@dataclass(frozen=True)
class Manifest:
    inputs: dict[str, InputSpec]
    outputs: dict[str, str]
    #: The product's name and what it does, as GitHub shows them; ``--help`` and the docs say the same.
    name: str = ""
    description: str = ""


@functools.cache
def load() -> Manifest:
    return parse(resources.files("release_action").joinpath("action.yml").read_text(encoding="utf-8"))


def parse(text: str) -> Manifest:
    # libyaml's loader, where PyYAML has it, reads the manifest in a fraction of the time.
    data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    inputs = {
        name: InputSpec(name, spec.get("description", ""), str(spec.get("default", "")))
        for name, spec in data["inputs"].items()
    }
    outputs = {name: spec.get("description", "") for name, spec in data["outputs"].items()}
    return Manifest(inputs, outputs, str(data.get("name", "")), " ".join(str(data.get("description", "")).split()))
