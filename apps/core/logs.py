"""Logging pieces named by settings.LOGGING.

A refused request is one line: Django's request logger attaches the exception's traceback to every
4xx it logs (a 403 raised by a permission check printed two full tracebacks in development, one
through Django's own console handler and one through ours). The traceback of a client error says
nothing about a fault in the platform, so it is dropped; a 5xx keeps its traceback.
"""

from __future__ import annotations

import logging


class ClientErrorsOneLine(logging.Filter):
    """Keeps a django.request record for a status below 500 to its message and the exception's
    text, without the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if record.name.startswith("django.request") and status is not None and status < 500:
            if record.exc_info and record.exc_info[1] is not None:
                reason = str(record.exc_info[1])
                if reason and reason not in record.getMessage():
                    record.msg = f"{record.msg} ({reason.replace('%', '%%')})"
            record.exc_info = None
            record.exc_text = None
        return True
