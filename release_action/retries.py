"""The one retry policy: what is retried, how long to wait, and when to give up.

Every request to a forge goes through ``RetryPolicy.call``. A request that may
have changed something before its answer was lost (creating a release,
uploading a file) passes ``before_retry``: it looks at the forge first and
returns the result if the earlier attempt had in fact landed, so a retry never
makes a duplicate.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import tenacity

from .errors import Cancelled, ForgeError, TransientError

log = logging.getLogger(__name__)

T = TypeVar("T")

#: HTTP statuses that say "not now" rather than "no".
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
#: The longest single wait between attempts, unless the forge's Retry-After asks for more.
MAX_BACKOFF_SECONDS = 30.0

_inside = threading.local()


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    max_seconds: float = 300.0
    first_wait_seconds: float = 1.0

    def call(
        self,
        attempt: Callable[[], T],
        *,
        what: str,
        before_retry: Callable[[], T | None] | None = None,
        cancel: threading.Event | None = None,
    ) -> T:
        """Run ``attempt`` until it succeeds, fails for good, or the budget is spent.

        ``what`` names the operation in log lines and in the final error. A call
        made from inside another one's attempt (re-reading the release before
        re-sending a file) makes a single attempt: the outer operation's budget
        is the only one, so budgets never multiply. A wait ends early, with Cancelled,
        when ``cancel`` is set (the run is stopping).
        """
        if getattr(_inside, "depth", 0):
            return attempt()
        backoff = tenacity.wait_exponential_jitter(
            multiplier=self.first_wait_seconds, max=MAX_BACKOFF_SECONDS, jitter=self.first_wait_seconds
        )

        def wait(state: tenacity.RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            if isinstance(error, TransientError) and error.retry_after is not None:
                return error.retry_after
            return backoff(state)

        def sleep(seconds: float) -> None:
            if cancel is None:
                tenacity.nap.sleep(seconds)
            elif cancel.wait(seconds):
                raise Cancelled(f"Stopped waiting to retry {what}.")

        def announce(state: tenacity.RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            log.warning(
                "%s; retrying in %.1f s (attempt %d of %d)",
                error,
                state.upcoming_sleep,
                state.attempt_number + 1,
                self.attempts,
            )

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.attempts) | tenacity.stop_before_delay(self.max_seconds),
            wait=wait,
            retry=tenacity.retry_if_exception_type(TransientError),
            before_sleep=announce,
            sleep=sleep,
            reraise=True,
        )
        _inside.depth = 1
        try:
            for state in retrying:
                with state:
                    if before_retry is not None and state.retry_state.attempt_number > 1:
                        landed = before_retry()
                        if landed is not None:
                            return landed
                    return attempt()
        except TransientError as error:
            if error.retry_after is not None and error.retry_after > self.max_seconds - _elapsed(retrying):
                # Not "gave up after 1 attempt in 0 s": the forge said when, and that is past the budget.
                raise ForgeError(
                    f"{error}; the forge asked to wait {error.retry_after:.0f} s before trying again (Retry-After),"
                    f" longer than retry_max_seconds ({self.max_seconds:g} s) allows for {what}; run again later"
                    " or raise retry_max_seconds",
                    error.status,
                ) from None
            raise ForgeError(f"{error} (gave up on {what} after {_tries(retrying)})", error.status) from None
        finally:
            _inside.depth = 0
        raise AssertionError("unreachable: tenacity either returns or raises")


def _elapsed(retrying: tenacity.Retrying) -> float:
    return retrying.statistics.get("delay_since_first_attempt", 0.0)


def _tries(retrying: tenacity.Retrying) -> str:
    stats = retrying.statistics
    count = stats.get("attempt_number", 1)
    seconds = stats.get("delay_since_first_attempt", 0.0)
    return f"{count} attempt{'s' if count != 1 else ''} in {seconds:.0f} s"
