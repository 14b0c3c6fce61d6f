"""Failures a user can cause or act on, each carrying the one sentence they are shown.

Anything else that escapes is a bug, and only bugs print a traceback.
"""

from __future__ import annotations


class ActionError(Exception):
    """A failure explained in one sentence; the program exits with ``exit_code``."""

    exit_code = 1


class InputError(ActionError):
    """An input is missing, malformed or contradicts another; nothing was sent to the forge."""

    exit_code = 2


class ForgeError(ActionError):
    """The forge refused a request or could not be reached."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class TransientError(ForgeError):
    """A failure that may pass if the same request is tried again later.

    ``retry_after`` is the forge's own ``Retry-After`` in seconds, when it sent one.
    """

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(message, status)
        self.retry_after = retry_after


class AssetGone(ForgeError):
    """A stored copy listed a moment ago is no longer there: another job removed it meanwhile."""


class Cancelled(BaseException):
    """The job was cancelled (SIGTERM or SIGINT) while work was under way.

    A BaseException, as KeyboardInterrupt is: raised by the signal handler wherever the main thread
    is, it must pass every ``except Exception`` on its way out (a logging handler's, which would print
    the record and carry on; a library's), and no retry, no fallback may take it for a failure."""

    exit_code = 130
