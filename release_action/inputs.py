"""Inputs: every setting gathered once, checked, and handed on as one ``Inputs``.

First match wins: a command-line flag, then ``INPUT_<NAME>`` in the
environment (GitHub's convention, also ``docker run -e`` and GitLab
variables), then what the CI system tells (the tag that started the
pipeline, the forge's own CI variables), then the default in ``action.yml``.
Nothing else in the program reads the environment for settings.
"""
from __future__ import annotations

import argparse
import difflib
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence
from urllib.parse import urlsplit

from . import __version__, manifest
from .artifacts import split_patterns
from .errors import InputError
from .retries import RetryPolicy

log = logging.getLogger(__name__)

TRUE_WORDS = {"true", "yes", "1"}
FALSE_WORDS = {"false", "no", "0"}
REPOSITORY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class Inputs:
    forge: str
    api_url: str
    token: str = field(repr=False)
    repository: str
    tag_name: str
    name: str | None
    body: str | None
    prerelease: bool | None
    draft: bool
    target_branch: str | None
    patterns: tuple[str, ...]
    working_directory: Path
    fail_on_unmatched_files: bool
    overwrite_files: bool
    verify: bool
    dry_run: bool
    parallel: int
    retry: RetryPolicy
    timeout_seconds: float
    ca_bundle: str | None
    dotenv_file: Path | None
    json_file: Path | None


def parser() -> argparse.ArgumentParser:
    specs = manifest.load().inputs
    cli = argparse.ArgumentParser(
        prog="release-action",
        description=(
            "Publish a release with its build artifacts to GitFlic or SourceCraft. Every input can be given"
            " as a flag or as the environment variable shown; flags win."
        ),
    )
    cli.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    for spec in specs.values():
        default = f"; default {spec.default}" if spec.default else ""
        boolean = spec.default in ("true", "false") or spec.name == "prerelease"
        cli.add_argument(
            spec.flag,
            dest=spec.name,
            metavar="BOOL" if boolean else spec.name.upper(),
            nargs="?" if boolean else None,
            const="true" if boolean else None,
            help=f"{spec.description} [env {spec.env_var}{default}]".replace("%", "%%"),
        )
    return cli


def resolve(argv: Sequence[str], environ: Mapping[str, str], on_secret: Callable[[str], None]) -> Inputs:
    """Gather and check every input; raises InputError naming the first bad one.

    ``on_secret`` learns the token as soon as it is known, before anything can print it.
    """
    specs = manifest.load().inputs
    flags = vars(parser().parse_args(list(argv)))
    _warn_about_typos(environ, specs)

    def given(name: str) -> str | None:
        if flags.get(name) is not None:
            return flags[name]
        value = environ.get(specs[name].env_var, "")
        return value if value.strip() else None

    # The forges (and with them the HTTP stack) are imported only now, so that --help is quick.
    from .forges import forge_class

    forge = (given("forge") or _detect_forge(environ, given("api_url"))).strip().lower()
    forge_cls = forge_class(forge)
    context = {**_tag_from_ci(environ), **forge_cls.context_defaults(environ)}

    def value(name: str) -> str | None:
        found = given(name)
        if found is None:
            found = context.get(name) or specs[name].default or None
        return found

    token = value("token")
    if token:
        on_secret(token.strip())
    reader = _Reader(value)
    body = reader.text("body")
    body_path = reader.text("body_path")
    if body_path:
        body = _read_body(body_path)
    api_url = _api_url(value("api_url") or forge_cls.default_api_url)
    return Inputs(
        forge=forge,
        api_url=api_url,
        token=_token(token, forge_cls.title),
        repository=_repository(value("repository")),
        tag_name=_required(value("tag_name"), "tag_name", "this pipeline was not started by a tag"),
        name=reader.text("name"),
        body=body,
        prerelease=reader.boolean("prerelease"),
        draft=reader.boolean("draft", False),
        target_branch=(reader.text("target_branch") or "").strip() or None,
        patterns=tuple(split_patterns(value("files") or "")),
        working_directory=_directory(value("working_directory") or "."),
        fail_on_unmatched_files=reader.boolean("fail_on_unmatched_files", True),
        overwrite_files=reader.boolean("overwrite_files", True),
        verify=reader.boolean("verify", True),
        dry_run=reader.boolean("dry_run", False),
        parallel=int(reader.number("parallel", minimum=1, whole=True)),
        retry=RetryPolicy(
            attempts=int(reader.number("retry_attempts", minimum=1, whole=True)),
            max_seconds=reader.number("retry_max_seconds", minimum=0),
            first_wait_seconds=reader.number("retry_wait_seconds", minimum=0),
        ),
        timeout_seconds=reader.number("timeout_seconds", minimum=0.1),
        ca_bundle=_existing_file(reader.text("ca_bundle"), "ca_bundle"),
        dotenv_file=_path(reader.text("dotenv_file")),
        json_file=_path(reader.text("json_file")),
    )


class _Reader:
    """Turns raw input strings into typed values, naming the input in every error."""

    def __init__(self, value):
        self._value = value

    def text(self, name: str) -> str | None:
        return self._value(name)

    def boolean(self, name: str, default: bool | None = None) -> bool | None:
        raw = self._value(name)
        if raw is None:
            return default
        return parse_boolean(raw, name)

    def number(self, name: str, *, minimum: float, whole: bool = False) -> float:
        raw = (self._value(name) or "").strip()
        try:
            number = int(raw) if whole else float(raw)
        except ValueError:
            kind = "a whole number" if whole else "a number"
            raise InputError(f"Input '{name}' must be {kind}, not '{raw}'.") from None
        if number < minimum:
            raise InputError(f"Input '{name}' must be at least {minimum:g}, not '{raw}'.")
        return number


def parse_boolean(raw: str, name: str) -> bool:
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise InputError(f"Input '{name}' must be true or false (or yes/no, 1/0), not '{raw.strip()}'.")


def _detect_forge(environ: Mapping[str, str], api_url: str | None) -> str:
    from .forges import all_forges

    forges = all_forges()
    for cls in forges:
        if cls.runs_this_ci(environ):
            return cls.name
    for cls in forges:
        if api_url and cls.serves(api_url):
            return cls.name
    return forges[0].name


def _tag_from_ci(environ: Mapping[str, str]) -> dict[str, str]:
    if environ.get("GITHUB_REF_TYPE") == "tag" and environ.get("GITHUB_REF_NAME"):
        return {"tag_name": environ["GITHUB_REF_NAME"]}
    if environ.get("CI_COMMIT_TAG"):
        return {"tag_name": environ["CI_COMMIT_TAG"]}
    return {}


def _warn_about_typos(environ: Mapping[str, str], specs: Mapping[str, manifest.InputSpec]) -> None:
    known = {spec.env_var: spec for spec in specs.values()}
    for variable in environ:
        if variable.startswith("INPUT_") and variable not in known:
            close = difflib.get_close_matches(variable, known, n=1, cutoff=0.8)
            if close:
                spec = known[close[0]]
                log.warning("%s is not an input of this action; did you mean %s (%s)?", variable, spec.env_var, spec.name)


def _required(raw: str | None, name: str, why_empty: str) -> str:
    if raw is None or not raw.strip():
        raise InputError(f"Input '{name}' is empty and {why_empty}; set it.")
    return raw.strip()


def _token(raw: str | None, forge_title: str) -> str:
    token = _required(raw, "token", f"no {forge_title} token was found in the CI environment")
    if any(ch.isspace() for ch in token):
        raise InputError("Input 'token' contains white space inside it; check how the secret was pasted.")
    if not (token.isascii() and token.isprintable()):
        # HTTP headers carry only ASCII; such a token was pasted wrongly or is not a token.
        raise InputError("Input 'token' contains characters other than printable ASCII; check how the secret was pasted.")
    return token


def _repository(raw: str | None) -> str:
    repository = _required(raw, "repository", "the CI environment does not name the forge repository").strip("/")
    if not REPOSITORY.fullmatch(repository):
        raise InputError(f"Input 'repository' must look like owner/project, not '{repository}'.")
    return repository


def _api_url(raw: str) -> str:
    url = raw.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InputError(f"Input 'api_url' must be an http:// or https:// address, not '{url}'.")
    if parts.scheme == "http":
        log.warning("api_url %s is plain http: the token and files travel unencrypted.", url)
    return url


def _read_body(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"Input 'body_path' names {path}, which does not exist.") from None
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or "it is not UTF-8 text"
        raise InputError(f"Input 'body_path' names {path}, which cannot be read: {reason}.") from None


def _directory(raw: str) -> Path:
    path = Path(raw)
    if not path.is_dir():
        raise InputError(f"Input 'working_directory' names {raw}, which is not a directory.")
    return path


def _existing_file(raw: str | None, name: str) -> str | None:
    if raw and not Path(raw).is_file():
        raise InputError(f"Input '{name}' names {raw}, which is not a file.")
    return raw


def _path(raw: str | None) -> Path | None:
    return Path(raw) if raw else None
