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
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, overload
from urllib.parse import unquote, urlsplit

from . import __version__, checksums, manifest, notes, provenance
from .artifacts import split_patterns
from .errors import InputError
from .provenance import CiRun
from .retries import RetryPolicy

if TYPE_CHECKING:
    from . import signing
    from .forges import CiToken

log = logging.getLogger(__name__)

TRUE_WORDS = {"true", "yes", "1"}
FALSE_WORDS = {"false", "no", "0"}
REPOSITORY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*")
#: Past this many connections a forge sees a flood, and urllib3 would spend minutes building its pool.
MAX_PARALLEL = 32
#: A day: any longer wait or budget is a typo, and the OS cannot wait "forever" on a socket.
MAX_SECONDS = 86400.0
USERINFO = re.compile(r"(?<=//)[^/?#]*@")


class Parser(argparse.ArgumentParser):
    """argparse, except that a mistake is one sentence that never repeats a value (it may be a secret),
    and a flag is never abbreviated: ``--file`` for ``--files`` is a typo, named as one."""

    def __init__(self, **kwargs) -> None:
        super().__init__(allow_abbrev=False, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        raise InputError(f"The command line is wrong: {message} (see --help).")


@dataclass(frozen=True)
class Inputs:
    forge: str
    api_url: str
    token: str = field(repr=False)
    #: The token is the CI job's own (``CI_JOB_TOKEN``), which may lack rights a personal token has.
    job_token: bool
    repository: str
    tag_name: str
    name: str | None
    body: str | None
    changelog: Path | None
    generate_notes: bool
    #: The checkout the CI names (GitHub's, GitLab's or SourceCraft's workspace), trusted for generated notes.
    workspace: Path | None
    body_mode: str
    prerelease: bool | None
    draft: bool
    target_branch: str | None
    patterns: tuple[str, ...]
    working_directory: Path
    fail_on_unmatched_files: bool
    overwrite_files: bool
    remove_other_assets: bool
    #: A published release is never changed: files may only be added, and a draft published.
    immutable: bool
    checksums: str | None
    checksums_algorithm: str
    #: The user's signing key, None when nothing is signed.
    signing: signing.SigningKey | None
    provenance: bool
    signing_notes: bool
    #: The CI run, as its variables describe it, for the provenance statement. (The field
    #: ``provenance`` above hides the module's name in this class, so CiRun is imported by name.)
    ci_run: CiRun
    verify: bool
    dry_run: bool
    parallel: int
    retry: RetryPolicy
    timeout_seconds: float
    ca_bundle: str | None
    dotenv_file: Path | None
    json_file: Path | None


def parser() -> argparse.ArgumentParser:
    loaded = manifest.load()
    specs = loaded.inputs
    cli = Parser(
        prog="release-action",
        # What action.yml says the product does, so --help, GitHub and the docs say one thing.
        description=(
            loaded.description + " Every input can be given as a flag or as the environment variable shown; flags win."
        ).replace("%", "%%"),
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
    flags: dict[str, str | None] = {}
    if argv:  # a CI step gives every input in the environment: the flags' parser is not even built
        known, unknown = parser().parse_known_args(list(argv))
        if unknown:
            raise InputError(_unknown_words(unknown, [spec.flag for spec in specs.values()]))
        flags = vars(known)
    _refuse_misspelt_variables(environ, specs)

    def given(name: str) -> str | None:
        if flags.get(name) is not None:
            return flags[name]
        value = environ.get(specs[name].env_var, "")
        return value if value.strip() else None

    # The forges (and with them the HTTP stack) are imported only now, so that --help is quick.
    from .forges import forge_class

    forge_cls = forge_class((given("forge") or _detect_forge(environ, given("api_url"))).strip().lower())
    forge = forge_cls.name
    context = {**_tag_from_ci(environ), **forge_cls.context_defaults(environ)}

    def value(name: str) -> str | None:
        found = given(name)
        if found is None:
            found = context.get(name) or specs[name].default or None
        return found

    reader = _Reader(value)
    key = _signing_key(reader, on_secret)
    given_token, ci_token = value("token"), forge_cls.ci_token(environ)
    for secret in (given_token, ci_token.value if ci_token else None):  # secrets before anything is printed
        if secret and secret.strip():
            on_secret(secret.strip())
    api_url = api_url_input(value("api_url") or forge_cls.default_api_url, on_secret, forge_cls.title)
    token, job_token = _token_for(api_url, given_token, ci_token)
    body = reader.text("body")
    body_path = reader.text("body_path")
    if body_path:
        body = notes.read_text(Path(body_path), "body_path")
    changelog = _path(reader.text("changelog"))
    if changelog and (body is not None or body_path):
        raise InputError("Input 'changelog' cannot be given together with 'body' or 'body_path'; give one of them.")
    ca_bundle = _existing_file(reader.text("ca_bundle"), "ca_bundle")
    if ca_bundle is None:
        _check_ca_variables(environ)
    checksums_name = _file_name((reader.text("checksums") or "").strip(), "checksums")
    if key is not None and checksums_name is None:
        raise InputError(
            "Input 'signing_key' signs the checksums file, and input 'checksums' is empty; name it,"
            " for example SHA256SUMS."
        )
    if reader.boolean("immutable", False) and reader.boolean("remove_other_assets", False):
        raise InputError(
            "Input 'immutable' keeps every file of a published release, and input"
            " 'remove_other_assets' would remove some; set one of them."
        )
    signing_notes = reader.boolean("signing_notes", False)
    if signing_notes and key is None:
        raise InputError(
            "Input 'signing_notes' says how to verify signatures, and input 'signing_key' is empty;"
            " set it, or leave signing_notes false."
        )
    return Inputs(
        forge=forge,
        api_url=api_url,
        token=_token(token, forge_cls.title),
        job_token=job_token,
        repository=repository_input(value("repository")),
        tag_name=_required(value("tag_name"), "tag_name", "this pipeline was not started by a tag"),
        name=reader.text("name"),
        body=body,
        changelog=changelog,
        generate_notes=reader.boolean("generate_notes", False),
        workspace=_workspace(environ),
        body_mode=reader.choice("body_mode", notes.MODES),
        prerelease=reader.boolean("prerelease"),
        draft=reader.boolean("draft", False),
        target_branch=_target(given("target_branch"), context, value("tag_name")),
        patterns=tuple(split_patterns(value("files") or "")),
        working_directory=_directory(value("working_directory") or "."),
        fail_on_unmatched_files=reader.boolean("fail_on_unmatched_files", True),
        overwrite_files=reader.boolean("overwrite_files", True),
        remove_other_assets=reader.boolean("remove_other_assets", False),
        immutable=reader.boolean("immutable", False),
        checksums=checksums_name,
        checksums_algorithm=reader.choice("checksums_algorithm", checksums.ALGORITHMS),
        signing=key,
        provenance=reader.boolean("provenance", False),
        ci_run=provenance.ci_run(environ),
        signing_notes=signing_notes,
        verify=reader.boolean("verify", True),
        dry_run=reader.boolean("dry_run", False),
        parallel=int(reader.number("parallel", minimum=1, maximum=MAX_PARALLEL, whole=True)),
        retry=RetryPolicy(
            attempts=int(reader.number("retry_attempts", minimum=1, maximum=100, whole=True)),
            max_seconds=reader.number("retry_max_seconds", minimum=0, maximum=MAX_SECONDS),
            first_wait_seconds=reader.number("retry_wait_seconds", minimum=0, maximum=MAX_SECONDS),
        ),
        timeout_seconds=reader.number("timeout_seconds", minimum=0.1, maximum=MAX_SECONDS),
        ca_bundle=ca_bundle,
        dotenv_file=_path(reader.text("dotenv_file")),
        json_file=_path(reader.text("json_file")),
    )


class _Reader:
    """Turns raw input strings into typed values, naming the input in every error."""

    def __init__(self, value: Callable[[str], str | None]) -> None:
        self._value = value

    def text(self, name: str) -> str | None:
        return self._value(name)

    def choice(self, name: str, words: Sequence[str]) -> str:
        word = (self._value(name) or words[0]).strip().lower()
        if word not in words:
            raise InputError(f"Input '{name}' must be one of {', '.join(words)}, not '{word[:40]}'.")
        return word

    @overload
    def boolean(self, name: str, default: bool) -> bool: ...
    @overload
    def boolean(self, name: str, default: None = None) -> bool | None: ...

    def boolean(self, name: str, default: bool | None = None) -> bool | None:
        """The input's yes or no; ``default`` when it is not given (a bool default makes the answer a bool)."""
        raw = self._value(name)
        if raw is None:
            return default
        return parse_boolean(raw, name)

    def number(self, name: str, *, minimum: float, maximum: float, whole: bool = False) -> float:
        raw = (self._value(name) or "").strip()
        try:
            number = int(raw) if whole else float(raw)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):  # nan, inf and 1e309 (which float() makes inf)
            kind = "a whole number" if whole else "a number"
            raise InputError(f"Input '{name}' must be {kind} from {minimum:g} to {maximum:g}, not '{raw[:40]}'.")
        if not minimum <= number <= maximum:
            raise InputError(f"Input '{name}' must be from {minimum:g} to {maximum:g}, not '{raw[:40]}'.")
        return number


def parse_boolean(raw: str, name: str) -> bool:
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise InputError(f"Input '{name}' must be true or false (or yes/no, 1/0), not '{raw.strip()}'.")


def _target(given: str | None, context: Mapping[str, str], tag: str | None) -> str | None:
    """Where a missing tag is made from: as given, or (GitVerse CI) the commit of the tag that started
    the run, which says nothing of another tag."""
    if given is not None:
        return given.strip() or None
    return context.get("target_branch") if tag == context.get("tag_name") else None


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


#: Where each CI system checks the repository out: the one checkout a run may read the history of.
WORKSPACE_VARIABLES = ("GITHUB_WORKSPACE", "CI_PROJECT_DIR", "SOURCECRAFT_WORKSPACE")


def _workspace(environ: Mapping[str, str]) -> Path | None:
    named = next((environ[name] for name in WORKSPACE_VARIABLES if environ.get(name, "").strip()), None)
    return Path(named) if named else None


def _tag_from_ci(environ: Mapping[str, str]) -> dict[str, str]:
    if environ.get("GITHUB_REF_TYPE") == "tag" and environ.get("GITHUB_REF_NAME"):
        return {"tag_name": environ["GITHUB_REF_NAME"]}
    if environ.get("CI_COMMIT_TAG"):
        return {"tag_name": environ["CI_COMMIT_TAG"]}
    return {}


#: What a flag's name looks like; any other word is not shown (a secret may start with "-").
FLAG = re.compile(r"--[A-Za-z][A-Za-z0-9_-]{0,40}")
#: How alike a name must be to an input's to be taken for a misspelling of it.
CLOSE = 0.8
#: A variable's name shown as it is; any other is shown escaped.
PLAIN_NAME = re.compile(r"[\x21-\x7e]{1,60}")


def _unknown_words(words: Sequence[str], flags: Sequence[str]) -> str:
    """The sentence for words the command line does not take. A word that follows an unknown flag
    may be its value, and a secret: it is never shown, nor anything that is not a flag's name."""
    named: list[str] = []
    value_of_previous = False
    for word in words:
        if word == "--":  # what follows is arguments, never flags
            break
        flag = word.split("=", 1)[0]
        if not value_of_previous and FLAG.fullmatch(flag):
            close = difflib.get_close_matches(flag.lower().replace("_", "-"), flags, n=1, cutoff=CLOSE)
            named.append(f"{flag} (did you mean {close[0]}?)" if close else flag)
            value_of_previous = "=" not in word
        else:
            value_of_previous = False
    what = f"unknown flag {', '.join(named)}" if named else "an unexpected argument (not shown)"
    return f"The command line has {what}; see --help for the inputs."


def _refuse_misspelt_variables(environ: Mapping[str, str], specs: Mapping[str, manifest.InputSpec]) -> None:
    """An INPUT_ variable close to an input's is a misspelling, and the input it meant would be left
    unset (INPUT_FILE: a release with no file): an input error, naming both, never the value."""
    known = {spec.env_var: spec for spec in specs.values()}
    for variable in sorted(environ):
        if variable in known or not variable.upper().startswith("INPUT_"):
            continue
        # In capitals, as GitHub names an input's variable: input_files is INPUT_FILES misspelt.
        close = difflib.get_close_matches(variable.upper(), known, n=1, cutoff=CLOSE)
        if close:
            spec = known[close[0]]
            # Escaped where it holds anything but visible ASCII: a space, a look-alike letter, a control code.
            shown = variable if PLAIN_NAME.fullmatch(variable) else ascii(variable[:60])
            raise InputError(
                f"{shown} is not an input of this action, and {spec.env_var} ({spec.name}) is: rename"
                " the variable, or the input it meant is left unset."
            )


def _signing_key(reader: _Reader, on_secret: Callable[[str], None]) -> signing.SigningKey | None:
    """The key and its passphrase are secrets from the moment they are read."""
    raw, passphrase = reader.text("signing_key"), reader.text("signing_passphrase")
    if passphrase is not None:
        passphrase = passphrase.rstrip("\r\n")  # a secret pasted with its line break
        on_secret(passphrase)
    if raw is None:
        if passphrase:
            raise InputError(
                "Input 'signing_passphrase' is set, and input 'signing_key' is empty; set the key too"
                " (a secret this job cannot read arrives empty)."
            )
        return None
    from . import signing  # only a run that signs pays for the signing modules

    text = signing.read_key(raw, on_secret)
    detected = signing.detect_format(text)
    named = (reader.text("signing_format") or "").strip().lower() or detected
    if named not in signing.FORMATS:
        raise InputError(f"Input 'signing_format' must be one of {', '.join(signing.FORMATS)}, not '{named[:40]}'.")
    if named != detected:
        raise InputError(
            f"Input 'signing_format' is {named}, and input 'signing_key' holds a {detected} key;"
            " make them agree, or leave signing_format empty."
        )
    return signing.SigningKey(
        text=text,
        passphrase=passphrase or None,
        format=named,
        sign_files=reader.choice("sign_files", signing.SIGN_FILES),
    )


def _token_for(api_url: str, given: str | None, ci: CiToken | None) -> tuple[str | None, bool]:
    """The token, and whether it is the CI job's own: that one only for the CI's own server."""
    if given is not None or ci is None:
        return given, False
    from .transport import origin

    if origin(api_url) is None or origin(api_url) != origin(ci.api_url):
        raise InputError(
            f"Input 'token' is empty, and the job token in {ci.variable} belongs to {ci.api_url}, not"
            f" to api_url {api_url}; set input 'token' to a token of that server."
        )
    return ci.value, True


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
        raise InputError(
            "Input 'token' contains characters other than printable ASCII; check how the secret was pasted."
        )
    return token


def repository_input(raw: str | None) -> str:
    repository = _required(raw, "repository", "the CI environment does not name the forge repository").strip("/")
    if not REPOSITORY.fullmatch(repository):
        raise InputError(f"Input 'repository' must look like owner/project, not '{repository}'.")
    return repository


def api_url_input(raw: str, on_secret: Callable[[str], None], forge_title: str) -> str:
    url = raw.strip().rstrip("/")
    if not url:  # a forge that is only ever self-hosted has no address of its own
        raise InputError(
            f"Input 'api_url' is empty, and {forge_title} has no public server to default to; give the"
            " server's API address, for example https://HOST/api/v1."
        )
    userinfo = USERINFO.search(url)
    if userinfo:
        # Credentials in the address would be printed in links and messages; the token is the only credential.
        for secret in (userinfo.group()[:-1], *userinfo.group()[:-1].split(":", 1)):
            on_secret(secret)
            on_secret(unquote(secret))
        raise InputError("Input 'api_url' must not contain a user name or password; give the token in input 'token'.")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a port out of range
    except ValueError as error:
        raise InputError(f"Input 'api_url' is not a valid address ({error}): '{url}'.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"Input 'api_url' must be an http:// or https:// address, not '{url}'.")
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise InputError(f"Input 'api_url' must be the API's base address without '?' or '#', not '{url}'.")
    url = _connectable(url)
    if parts.scheme == "http":
        log.warning("api_url %s is plain http: the token and files travel unencrypted.", url)
    return url


def _connectable(url: str) -> str:
    """The address as a request will use it (an IDN host in its xn-- form, which the token's origin is
    then declared by), or InputError for a host no connection can be made to."""
    import requests
    from urllib3.util import parse_url

    try:
        prepared = requests.Request("GET", url).prepare().url or ""
        host = parse_url(prepared).host or ""
        labels = [] if host.startswith("[") else host.removesuffix(".").split(".")
        if not all(0 < len(label) <= 63 for label in labels):
            raise ValueError(host)
    except (requests.RequestException, ValueError, UnicodeError):
        raise InputError(f"Input 'api_url' names a host that no connection can be made to: '{url}'.") from None
    return prepared.rstrip("/")


def _check_ca_variables(environ: Mapping[str, str]) -> None:
    """requests trusts what these name; a missing file would fail the first request with a traceback."""
    for variable in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        path = environ.get(variable)
        if path:
            if not os.path.exists(path):
                raise InputError(
                    f"{variable} names {path}, which does not exist; fix or unset it, or set input 'ca_bundle'."
                )
            if not (os.path.isfile(path) or os.path.isdir(path)):  # a FIFO would hold the first request for ever
                raise InputError(
                    f"{variable} names {path}, which is neither a file nor a directory of certificates;"
                    " fix or unset it, or set input 'ca_bundle'."
                )
            return


def _directory(raw: str) -> Path:
    path = Path(raw)
    if not path.is_dir():
        raise InputError(f"Input 'working_directory' names {raw}, which is not a directory.")
    return path


def _existing_file(raw: str | None, name: str) -> str | None:
    if raw and not Path(raw).is_file():
        raise InputError(f"Input '{name}' names {raw}, which is not a file.")
    return raw


def _file_name(raw: str, name: str) -> str | None:
    if "/" in raw or raw in (".", ".."):
        raise InputError(f"Input '{name}' must be a file name, not a path: '{raw}'.")
    return raw or None


def _path(raw: str | None) -> Path | None:
    return Path(raw) if raw else None
