"""Structured JSON-lines logging that never holds a password, token or secret.

Every record passes through :class:`RedactingFilter`, which blanks bearer tokens, our ``rc_``
tokens, and the values of secret-looking keys in messages and in ``extra`` fields, whatever
the caller wrote; and through :class:`RequestIdFilter`, which stamps it with the id of the
request (or of the job a request queued) that caused it.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import sys
import time
from contextvars import ContextVar
from functools import lru_cache
from typing import Any

_SECRET_KEY = re.compile(r"pass(word)?|secret|token|authorization|cookie|code_verifier|pin$", re.I)
_SECRET_TEXT = [
    (
        re.compile(
            r'(?i)("[\w-]*(password|passwd|secret|token|pin)[\w-]*"\s*:\s*)"(?:[^"\\]|\\.)*"'
        ),
        r'\1"[redacted]"',
    ),
    (re.compile(r"(?i)(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 [redacted]"),
    (re.compile(r"\brc_[A-Za-z0-9_-]{8,}"), "[redacted]"),
    (
        re.compile(r"(?i)\b(password|passwd|secret|token|client_secret|code)=([^&\s]+)"),
        r"\1=[redacted]",
    ),
]
# A text none of the patterns above can change holds none of these words: one search of it
# spares the four substitutions on most log text (a path, a method, a request id).
_SUSPECT = re.compile(r"(?i)pass|secret|token|pin|bearer|basic|rc_|code")
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def scrub(text: str) -> str:
    if not _SUSPECT.search(text):
        return text
    for pattern, replacement in _SECRET_TEXT:
        text = pattern.sub(replacement, text)
    return text


@lru_cache(maxsize=1024)
def _secret_key(key: str) -> bool:
    return _SECRET_KEY.search(key) is not None


def scrub_value(key: str, value: Any) -> Any:
    if _secret_key(key):
        return "[redacted]"
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: scrub_value(str(k), v) for k, v in value.items()}
    return value


request_id: ContextVar[str | None] = ContextVar("rollcall_request_id", default=None)
_GOOD_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


# New request ids: 64 bits of a generator seeded from the OS once per process (and again in a
# forked child), not a system call per request (``os.urandom`` releases the GIL, and the event
# loop's thread then waits for a worker thread to hand it back). An id only tells requests
# apart in logs: it is no secret, so a predictable sequence is fine.
_request_ids = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _request_ids.seed(os.urandom(32)))


def accept_request_id(sent: str | None) -> str:
    """The client's ``X-Request-Id`` when it is a plain token of up to 64 characters (it goes
    into logs and headers), else a new one.

    >>> accept_request_id("trace-42")
    'trace-42'
    >>> len(accept_request_id("two words"))
    16
    """
    if sent and _GOOD_REQUEST_ID.fullmatch(sent):
        return sent
    return f"{_request_ids.getrandbits(64):016x}"  # 64 bits, as the 16 hex digits of a uuid4


class RequestIdFilter(logging.Filter):
    """Stamp every record with the current request id (a worker thread of a request, or a job
    queued by one, carries it too)."""

    def filter(self, record: logging.LogRecord) -> bool:
        current = request_id.get()
        if current and not hasattr(record, "request_id"):
            record.request_id = current
        return True


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = scrub(record.getMessage())
        record.args = ()
        fields = vars(record)
        for key in fields.keys() - _STANDARD:
            value = fields[key]
            if _secret_key(key) or isinstance(value, str | dict):
                fields[key] = scrub_value(key, value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any ``extra`` fields."""

    _second = -1
    _stamp = ""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self._time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        for key in sorted(set(vars(record)) - _STANDARD):
            entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exception"] = scrub(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)

    def _time(self, created: float) -> str:
        """ISO 8601 UTC to the millisecond (``2026-12-02T07:03:55.118+00:00``); the part up to
        the second is formatted once per second."""
        second = int(created)
        if second != self._second:
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._stamp}.{int((created - second) * 1000):03d}+00:00"


class CurrentStderrHandler(logging.StreamHandler):
    """A stream handler that writes to whatever ``sys.stderr`` is when a record is emitted
    (as :data:`logging.lastResort` does), never to a stream that was closed since."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure_logging(level: str = "INFO", stream: Any = None) -> None:
    """Send every log record, uvicorn's included, through the redacting JSON formatter.

    The formatter writes neither thread, process name nor caller, so records skip gathering
    them (the logging HOWTO's "Optimization": a stack walk per record otherwise).
    """
    logging.logThreads = False
    logging.logMultiprocessing = False
    logging._srcfile = None  # no findCaller per record
    handler = logging.StreamHandler(stream) if stream is not None else CurrentStderrHandler()
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    # HTTP clients log whole URLs at INFO (tokens in paths and queries of upstream pulls).
    for name in ("httpx", "httpx2", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel("WARNING")  # "Context impl SQLiteImpl." on every start
