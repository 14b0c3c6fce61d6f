"""The command line: gather inputs, publish, write outputs, and turn failures into one sentence."""
from __future__ import annotations

import logging
import os
import signal
import sys
from typing import Mapping, Sequence

from . import log as logs
from .errors import ActionError, Cancelled

logger = logging.getLogger("release_action")

EXIT_BUG = 70


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    argv = sys.argv[1:] if argv is None else argv
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
