"""Log lines for CI: plain lines, GitHub annotations on GitHub, secrets never shown."""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import re
import sys
import threading
import time
from collections.abc import Iterator
from typing import TextIO
from urllib.parse import quote, quote_plus

MASK = "***"
#: Where long text is cut, and the shortest start of a secret that counts as the secret there.
CUT, SHOWN_PREFIX = "…", 4


#: RFC 3986's sub-delimiters: characters a path may hold unescaped.
SUB_DELIMS = "!$&'()*+,;="


class Secrets:
    """Values that must never be written; every log line passes through ``redact``."""

    def __init__(self) -> None:
        self._values: set[str] = set()

    def add(self, value: str) -> None:
        """Remember a secret, and the forms a server may echo it in."""
        if value and len(value) >= 4:
            # A forge may echo what it was sent percent-encoded (in a URL) or escaped (in JSON). A variable
            # that is not UTF-8 arrives as lone surrogates: its bytes are what would be sent.
            # Escaped as a query value, a path, a path segment (Go's PathEscape keeps RFC 3986's sub-delims).
            encoded = {
                quote(value, safe=safe, errors="surrogateescape")
                for safe in ("", "/", ":/@", SUB_DELIMS + ":@", SUB_DELIMS + ":@/")
            }
            encoded |= {quote_plus(value, safe=safe, errors="surrogateescape") for safe in ("", "/")}
            # Percent escapes in either case (%2B, %2b), and JSON's escaped slash.
            encoded |= {re.sub(r"%[0-9A-F]{2}", lambda m: m[0].lower(), form) for form in encoded}
            escaped = json.dumps(value)[1:-1]
            self._values.update({value, *encoded, escaped, escaped.replace("/", "\\/"), printable(value)})

    def redact(self, text: str) -> str:
        for value in sorted(self._values, key=len, reverse=True):
            text = text.replace(value, MASK)
        if CUT in text:
            # A forge's words are cut at a length with "…": a secret cut there shows its start.
            for value in self._values:
                for length in range(len(value) - 1, SHOWN_PREFIX - 1, -1):
                    text = text.replace(value[:length] + CUT, MASK + CUT)
        return text

    def redact_whole(self, value: str) -> str:
        """The value, or the mask alone where a secret is in it or in what an output makes of it (its
        lines joined into one, its JSON escapes): a value masked in part would pass for a true one."""
        forms = (value, " ".join(value.split()), json.dumps(value, ensure_ascii=False)[1:-1])
        return MASK if any(self.redact(form) != form for form in forms) else value


def printable(text: str) -> str:
    """Text that any UTF-8 stream can write. A file name that is not UTF-8 arrives as lone
    surrogates, which would make the write fail: its bytes are shown as \\xNN instead."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def excerpt(text: str, limit: int = 200) -> str:
    """A forge's text on one line, cut at ``limit`` with "…" (redaction masks a secret cut there too)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + CUT


class _Formatter(logging.Formatter):
    def __init__(self, secrets: Secrets, github: bool):
        super().__init__("%(message)s")
        self._secrets = secrets
        self._github = github

    def format(self, record: logging.LogRecord) -> str:
        text = self._secrets.redact(super().format(record))
        text = printable(text)
        if record.levelno >= logging.WARNING:
            kind = "error" if record.levelno >= logging.ERROR else "warning"
            if self._github:
                # Workflow commands end at a newline, so the message is escaped onto one line.
                escaped = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
                return f"::{kind}::{escaped}"
            return f"{kind.capitalize()}: {text}"
        return text


def only_this_thread() -> None:
    """From now on, only the calling thread's lines are written: after a cancel, uploads still winding
    down on their threads must not speak after the last line, which says what did not finish."""
    thread = threading.get_ident()
    for handler in logging.getLogger("release_action").handlers:
        handler.addFilter(lambda record: record.thread == thread)


#: How the CI folds a phase of the log: GitHub's workflow commands (GitHub, Gitea, Forgejo and GitVerse
#: runners read them), GitLab's collapsible sections (GitLab, GitFlic), or not at all.
FOLDS = ("github", "gitlab", "")
_fold = ""


@contextlib.contextmanager
def phase(title: str) -> Iterator[None]:
    """One phase of the run, folded in the CI's log; closed however it ends, so that the error line that
    follows a failure is outside it, where the reader sees it."""
    log = logging.getLogger("release_action")
    name = f"release_action_{next(_sections)}"
    if _fold == "github":
        log.info("::group::%s", title)
    elif _fold == "gitlab":
        log.info("\x1b[0Ksection_start:%d:%s[collapsed=true]\r\x1b[0K%s", time.time(), name, title)
    else:
        log.info("%s", title)
    try:
        yield
    finally:
        if _fold == "github":
            log.info("::endgroup::")
        elif _fold == "gitlab":
            log.info("\x1b[0Ksection_end:%d:%s\r\x1b[0K", time.time(), name)


_sections = itertools.count(1)


#: How often a long transfer says how far it is: CI logs are not terminals, so lines, not a bar.
PROGRESS_EVERY_SECONDS = 5.0


class Progress:
    """A log line every few seconds while a file moves (an upload, or a download to check it), and one
    at the end if it took that long."""

    def __init__(self, name: str, size: int, verb: str = "sent"):
        self._name, self._size, self._verb = name, size, verb
        self._start = self._last = time.monotonic()
        self.moved = 0

    def advance(self, moved: int) -> None:
        """``moved``: the bytes moved so far."""
        self.moved = moved
        now = time.monotonic()
        if now - self._last >= PROGRESS_EVERY_SECONDS:
            self._last = now
            logging.getLogger("release_action").info(
                "  %s: %d%% of %s, %.1f MB/s",
                self._name,
                100 * moved // (self._size or 1),
                size_text(self._size),
                moved / (now - self._start) / 1e6,
            )

    def done(self) -> None:
        seconds = time.monotonic() - self._start
        if seconds >= PROGRESS_EVERY_SECONDS:
            logging.getLogger("release_action").info(
                "  %s: %s in %.1f s, %.1f MB/s", self._name, self._verb, seconds, self.moved / seconds / 1e6
            )


def size_text(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB" if size >= 1 << 20 else f"{size} bytes"


def setup(github: bool, stream: TextIO | None = None, fold: str = "") -> Secrets:
    """Send the program's log to ``stream`` (stdout: where CI systems read workflow commands)."""
    global _fold
    _fold = fold
    secrets = Secrets()
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(_Formatter(secrets, github))
    root = logging.getLogger("release_action")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    root.propagate = False
    return secrets


def mask_on_github(value: str, stream: TextIO | None = None) -> None:
    """Ask GitHub to hide ``value`` in every later log line, whoever prints it."""
    print(f"::add-mask::{printable(value)}", file=stream or sys.stdout, flush=True)  # as this log would show it
