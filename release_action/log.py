"""Log lines for CI: plain lines, GitHub annotations on GitHub, secrets never shown."""
from __future__ import annotations

import json
import logging
import sys
import threading
from typing import TextIO
from urllib.parse import quote, quote_plus

MASK = "***"
#: Where long text is cut, and the shortest start of a secret that counts as the secret there.
CUT, SHOWN_PREFIX = "…", 4


class Secrets:
    """Values that must never be written; every log line passes through ``redact``."""

    def __init__(self) -> None:
        self._values: set[str] = set()

    def add(self, value: str) -> None:
        """Remember a secret, and the forms a server may echo it in."""
        if value and len(value) >= 4:
            # A forge may echo what it was sent percent-encoded (in a URL) or escaped (in JSON). A variable
            # that is not UTF-8 arrives as lone surrogates: its bytes are what would be sent.
            self._values.update({value, quote(value, safe="", errors="surrogateescape"),
                                 quote_plus(value, errors="surrogateescape"), json.dumps(value)[1:-1], printable(value)})

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


def setup(github: bool, stream: TextIO | None = None) -> Secrets:
    """Send the program's log to ``stream`` (stdout: where CI systems read workflow commands)."""
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
