"""A deadline on stopping the web server.

On SIGTERM daphne cancels every connection's application and waits, without a limit, until all
have finished. A consumer cancelled inside `database_sync_to_async` cannot finish before its
worker thread returns (asgiref waits for the thread), and a thread blocked on a database lock, a
slow query or an `async_to_sync` call back into the stopping event loop never returns; the
interpreter then also waits for that thread at exit. Stopping once hung over 60 s that way.

So, when the reactor begins to stop, a daemon timer starts: if the process is still alive after
`SHUTDOWN_TIMEOUT_SECONDS`, it writes every thread's stack to stderr (what was stuck) and ends
the process. Its database connections close with it, so PostgreSQL rolls back whatever the stuck
thread had begun. Keep the timeout below the supervisor's grace period (docker compose's
`stop_grace_period`, 10 s by default) so the process ends on its own terms, with the stacks in
the log, instead of by SIGKILL.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import sys
import threading

logger = logging.getLogger(__name__)

EXIT_AFTER_DEADLINE = 3  # a distinct status: stopped, but not cleanly


def _end_process(seconds: float) -> None:
    sys.stderr.write(
        f"imewe: still stopping after {seconds:g} s (SHUTDOWN_TIMEOUT_SECONDS); "
        "ending the process. Threads that did not finish:\n"
    )
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    sys.stderr.flush()
    os._exit(EXIT_AFTER_DEADLINE)


def start_deadline(seconds: float) -> None:
    timer = threading.Timer(seconds, _end_process, args=(seconds,))
    timer.daemon = True  # never what keeps the process alive
    timer.name = "imewe-shutdown-deadline"
    timer.start()


def bound_server_shutdown(seconds: float) -> None:
    """Arms the deadline when the Twisted reactor (daphne's) begins to stop. Does nothing when no
    reactor is installed, so importing the ASGI application elsewhere installs none."""
    if seconds <= 0 or "twisted.internet.reactor" not in sys.modules:
        return
    from twisted.internet import reactor

    # (IReactorCore declares its methods without `self`, as zope interfaces do: mypy shifts them)
    add_trigger = reactor.addSystemEventTrigger
    add_trigger("before", "shutdown", start_deadline, seconds)  # type: ignore[arg-type]
