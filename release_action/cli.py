"""The command line: gather inputs, publish, write outputs, and turn failures into one sentence; or, as
``release-action verify``, check a published release as a downloader would."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from . import log as logs
from .errors import ActionError, Cancelled

logger = logging.getLogger("release_action")

EXIT_BUG = 70


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "verify":
        return _verify(argv[1:], environ)
    github = environ.get("GITHUB_ACTIONS") == "true"
    # GitLab says GITLAB_CI; GitFlic CI, which speaks its dialect and folds its sections, CI_SERVER_REST_URL.
    gitlab = environ.get("GITLAB_CI") == "true" or bool(environ.get("CI_SERVER_REST_URL"))
    secrets = logs.setup(github, fold="github" if github else "gitlab" if gitlab else "")
    _cancel_on_signals()

    def on_secret(value: str) -> None:
        # GitHub masks line by line, and a pasted token may carry a line break: mask each line,
        # never the whole, whose second line the mask command itself would print. Words are not
        # masked alone: a passphrase's "release" would hide that word in every line and output.
        lines = [line.strip() for line in value.splitlines() if line.strip()]
        for piece in [value, *lines]:
            secrets.add(piece)
        for piece in dict.fromkeys(lines) if github else ():
            logs.mask_on_github(piece)

    try:
        # Imported in this order so that --help and input errors do not wait for the HTTP stack.
        from .inputs import resolve

        inputs = resolve(argv, environ, on_secret=on_secret)
        from . import outputs
        from .publish import DryRun, publish

        outputs.check(inputs, environ)
        result = publish(inputs)
        if isinstance(result, DryRun):
            outputs.summarize(environ, outputs.dry_run_summary(result, secrets.redact))
        else:
            outputs.write(result, inputs, environ, secrets.redact_whole)
        return 0
    except (ActionError, Cancelled) as error:
        if isinstance(error, Cancelled):
            logs.only_this_thread()
        sentence = _sentence(str(error))
        logger.error("%s", sentence)
        if environ.get("GITHUB_STEP_SUMMARY"):  # the summary says so too, not only the log
            from . import outputs

            outputs.summarize(environ, outputs.failure_summary(secrets.redact(sentence)))
        return error.exit_code
    except KeyboardInterrupt:
        logs.only_this_thread()
        logger.error("Cancelled.")
        return Cancelled.exit_code
    except Exception:  # a bug: say so, with the traceback (redacted like every line)
        logger.exception("Internal error: this is a bug in release-action; please report it with this log.")
        return EXIT_BUG


VERIFY_HELP = """Check a release as someone who downloads it: the checksums file's signature with the publisher's
public key, every file against the checksums file, every signature and signed attestation (provenance,
release attestation), and that every file of the release is accounted for. From a forge (--forge,
--repository, --tag, and --api-url for a self-hosted one) each file is streamed, never kept; or from a
folder of files already downloaded (--dir), with no network. A private project's token is read from the
environment variable INPUT_TOKEN, never from the command line.

Exit codes: 0 verified; 1 the release does not verify (one line per finding); 2 the command line or the
key is wrong; 3 the release could not be read (network, forge, no such release); 130 cancelled."""


def _verify_parser() -> argparse.ArgumentParser:

    from .inputs import Parser

    cli = Parser(
        prog="release-action verify", description=VERIFY_HELP, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    cli.add_argument(
        "--key",
        required=True,
        metavar="FILE",
        help="the publisher's public key: an OpenPGP certificate file (gpg --armor --export), a"
        " minisign.pub file, or a minisign public key (RW...)",
    )
    cli.add_argument("--key-id", metavar="ID", help="the fingerprint (OpenPGP) or key id (minisign) the key must have")
    cli.add_argument("--dir", type=Path, metavar="FOLDER", help="check the files in this folder; no network")
    cli.add_argument("--forge", help="gitflic, sourcecraft, gitverse or gitea (forgejo, codeberg)")
    cli.add_argument("--api-url", metavar="URL", help="the forge's API address; empty: its public server's")
    cli.add_argument("--repository", metavar="OWNER/PROJECT")
    cli.add_argument("--tag", help="the release's tag; with --dir, the tag the files must have been signed for")
    cli.add_argument("--checksums", metavar="NAME", help="the checksums file's name; default SHA256SUMS or SHA512SUMS")
    cli.add_argument("--json", action="store_true", help="print the result as one JSON object (the log goes to stderr)")
    cli.add_argument("--ca-bundle", metavar="FILE", help="PEM certificates to trust instead of the system's")
    cli.add_argument("--timeout-seconds", type=float, default=120.0, metavar="SECONDS")
    return cli


def _verify(argv: Sequence[str], environ: Mapping[str, str]) -> int:
    """``release-action verify``: the report on stdout, and its exit code."""
    as_json = "--json" in argv
    secrets = logs.setup(False, sys.stderr if as_json else None)
    _cancel_on_signals()
    token = environ.get("INPUT_TOKEN", "").strip()
    if token:
        secrets.add(token)
    try:
        from . import verify
        from .inputs import api_url_input, repository_input

        parsed = _verify_parser().parse_args(list(argv))
        forge_class = None
        if parsed.dir is None and parsed.forge:
            from .forges import forge_class as named

            forge_class = named(parsed.forge.strip().lower())
        options = verify.Options(
            key=parsed.key,
            key_id=parsed.key_id,
            tag=parsed.tag,
            checksums=parsed.checksums,
            folder=parsed.dir,
            forge=parsed.forge,
            repository=repository_input(parsed.repository) if forge_class else parsed.repository,
            api_url=(
                api_url_input(parsed.api_url or forge_class.default_api_url, secrets.add, forge_class.title)
                if forge_class
                else parsed.api_url
            ),
            token=token,
            ca_bundle=parsed.ca_bundle,
            timeout_seconds=parsed.timeout_seconds,
            as_json=parsed.json,
        )
        report = verify.verify(options)
    except ActionError as error:
        logger.error("%s", _sentence(str(error)))
        return error.exit_code
    except KeyboardInterrupt:
        logger.error("Cancelled.")
        return Cancelled.exit_code
    except Exception:  # a bug: say so, with the traceback (redacted like every line)
        logger.exception("Internal error: this is a bug in release-action; please report it with this log.")
        return EXIT_BUG
    output = report.json() if options.as_json else "\n".join(report.lines())
    print(secrets.redact(logs.printable(output)), flush=True)
    return verify.VERIFIED if report.verified else verify.FINDINGS


def run() -> None:
    """The program as a command (``release-action``, ``python -m release_action``, the image): ``main``, then
    out at once, with every output flushed. Nothing is torn down that the OS frees anyway, and a thread
    still waiting on a forge after a cancel does not hold the exit back."""
    code = main()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed or broken pipe: nothing more can be said there
            pass
    os._exit(code)


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "?", "!", "…")) else text + "."


def _cancel_on_signals() -> None:
    """A cancelled CI job sends SIGTERM; stop like Ctrl-C, saying what did not finish."""

    def cancel(signum: int, frame: object) -> None:
        # Once: the run is stopping, and a second signal must not cut short the lines that say what
        # did not finish (a CI that insists sends SIGKILL).
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Cancelled(f"Cancelled by {signal.Signals(signum).name}.")

    try:
        signal.signal(signal.SIGTERM, cancel)
    except ValueError:  # not the main thread (embedded use); the caller handles signals
        pass
