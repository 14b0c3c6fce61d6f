"""The manifest, ``action.yml``: the one list of the program's inputs and outputs.

GitHub reads it to run the action; the program reads it at run time for names
and defaults, so every way of running it (GitHub, GitLab, ``docker run``)
behaves the same and the two cannot drift apart.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path


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
    """The installed manifest, from the parse cached beside the package's compiled modules when there is one.

    Every run starts by reading it, and importing and running PyYAML takes a tenth of the time to the
    first request; the cache is named by the manifest's own hash, so an edited manifest is parsed anew.
    """
    text = (Path(__file__).parent / "action.yml").read_text(encoding="utf-8")
    cache = Path(__file__).parent / "__pycache__" / f"action.yml.{hashlib.sha256(text.encode()).hexdigest()[:16]}.json"
    try:
        return _from_json(json.loads(cache.read_text(encoding="utf-8")))
    except (OSError, ValueError, LookupError, TypeError, AttributeError):  # none, or not one this code wrote
        pass
    loaded = parse(text)
    if not sys.dont_write_bytecode:  # written where Python writes its own caches, and when
        _write_cache(cache, loaded)
    return loaded


def _from_json(data: dict) -> Manifest:
    inputs = {name: InputSpec(**spec) for name, spec in data["inputs"].items()}
    return Manifest(inputs, data["outputs"], data["name"], data["description"])


def _write_cache(cache: Path, loaded: Manifest) -> None:
    """Write the parse whole or not at all: a run reading it meanwhile sees the old one or none. The
    partial file is a new one of a random name (as Python writes its own caches, exclusively), so a
    link planted where it would go is never written through."""
    import tempfile  # only when the cache is written: once per installed manifest

    partial = None
    try:
        cache.parent.mkdir(exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=cache.parent, prefix=f"{cache.name}.", delete=False
        ) as handle:
            partial = Path(handle.name)
            handle.write(json.dumps(dataclasses.asdict(loaded)))
        os.replace(partial, cache)
    except OSError:  # a read-only install: parsed on every run, as without a cache
        if partial is not None:
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)


def parse(text: str) -> Manifest:
    import yaml  # only when the cached parse is missing or stale

    # libyaml's loader, where PyYAML has it, reads the manifest in a fraction of the time.
    data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    inputs = {
        name: InputSpec(name, spec.get("description", ""), str(spec.get("default", "")))
        for name, spec in data["inputs"].items()
    }
    outputs = {name: spec.get("description", "") for name, spec in data["outputs"].items()}
    return Manifest(inputs, outputs, str(data.get("name", "")), " ".join(str(data.get("description", "")).split()))
