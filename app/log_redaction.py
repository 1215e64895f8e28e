"""No secret in any log record: tokens, cookies and passwords are replaced before a record exists.

Installed as the log record factory, so it covers every logger (ours, uvicorn's, the
`websockets` handshake lines, httpx) and every handler, including handlers configured
after it. At debug level `websockets` logs each handshake header as its own record
("< %s: %s", name, value), so a value that follows a secret-bearing header name is
redacted whole; elsewhere secrets are recognised by shape (Bearer/Basic credentials,
cookie headers, our token prefixes, NextCloud app passwords, `token=` in a query) and by
value (the secrets the service was configured with, registered with `add_secret`).
"""

from __future__ import annotations

import logging
import re
import threading
import traceback
from collections.abc import Callable
from typing import Any

__all__ = ["REDACTED", "add_secret", "install", "redact"]

REDACTED = "[redacted]"

_SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"}
)
_PATTERNS = [
    # An Authorization header's credentials, wherever the header is printed.
    re.compile(r"(?i)\b(bearer|basic|digest)\s+[A-Za-z0-9._~+/=:-]+"),
    # A header line or dict entry that carries cookies or credentials.
    re.compile(
        r"(?i)\b((?:proxy-)?authorization|set-cookie|cookie|x-api-key)"
        r"((?:['\"]?\s*[:=]\s*|['\"]\s*,\s*)(?:b?['\"])?)[^\r\n'\"]+"
    ),
    # Our own tokens: device (prd_), admin (pra_), 256 random bits each.
    re.compile(r"\bpr[a-z]_[A-Za-z0-9_-]{20,}"),
    # Secrets passed in a query string or form.
    re.compile(r"(?i)\b(token|password|app_?password|secret|session)=[^&\s'\"]+"),
    # NextCloud app passwords: five groups of five, or 72 random letters and digits.
    re.compile(r"\b[A-Za-z0-9]{5}(?:-[A-Za-z0-9]{5}){4}\b"),
    re.compile(r"\b(?=[A-Za-z0-9]*[A-Z])(?=[A-Za-z0-9]*[a-z])(?=[A-Za-z0-9]*\d)[A-Za-z0-9]{40,}\b"),
]
_KEEP_NAME = {1: r"\1 " + REDACTED, 2: r"\1\2" + REDACTED, 4: r"\1=" + REDACTED}
# The shortest text a pattern matches ("basic x", "token=x"); known secrets are longer.
_SHORTEST_MATCH = 7
# Its format and arguments are redacted apart, and its format is fixed: the merged line
# need not be looked at again (a request's access line, the most frequent record).
_ACCESS_LOGGER = "uvicorn.access"

_known: set[str] = set()
_lock = threading.Lock()
_installed = False


def add_secret(value: str | None) -> None:
    """Redact this exact value too (a configured token or password); short values are ignored."""
    if value and len(value) >= 8:
        with _lock:
            _known.add(value)


def redact(text: str) -> str:
    """`text` with every secret it carries replaced by [redacted]."""
    if len(text) < _SHORTEST_MATCH:
        return text  # a method, an HTTP version: nothing above can match
    for secret in _known:
        if secret in text:
            text = text.replace(secret, REDACTED)
    for index, pattern in enumerate(_PATTERNS, start=1):
        text = pattern.sub(_KEEP_NAME.get(index, REDACTED), text)
    return text


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, bytes | bytearray):
        return redact(bytes(value).decode("latin-1"))
    return value


def _redact_args(args: tuple[Any, ...]) -> tuple[Any, ...]:
    cleaned: list[Any] = []
    hide_next = False
    for value in args:
        if hide_next:
            cleaned.append(REDACTED)
            hide_next = False
            continue
        text = value.decode("latin-1") if isinstance(value, bytes | bytearray) else value
        hide_next = isinstance(text, str) and text.strip().lower() in _SECRET_HEADERS
        cleaned.append(_redact_value(value))
    return tuple(cleaned)


def _clean(record: logging.LogRecord) -> None:
    if isinstance(record.args, tuple) and record.args:
        record.args = _redact_args(record.args)
    elif isinstance(record.args, dict):
        record.args = {k: _redact_value(v) for k, v in record.args.items()}
    if isinstance(record.msg, str):
        record.msg = redact(record.msg)
    else:
        record.msg = redact(str(record.msg))
    if record.name != _ACCESS_LOGGER:
        _clean_merged(record)
    if record.exc_info and record.exc_info[0] is not None:
        record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)).rstrip())
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


def _clean_merged(record: logging.LogRecord) -> None:
    """A secret only visible once message and arguments meet (a header split in two)."""
    try:
        merged = record.getMessage()
    except (TypeError, ValueError):
        return  # a broken format string: logging itself reports it when emitting
    cleaned = redact(merged)
    if cleaned != merged:
        record.msg, record.args = cleaned, ()


def install() -> None:
    """Make every log record of this process pass through `redact` (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    previous: Callable[..., logging.LogRecord] = logging.getLogRecordFactory()

    def make_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            _clean(record)
        except Exception:  # redaction must never cost a log line its existence
            record.msg, record.args = "[log record withheld: redaction failed]", ()
        return record

    logging.setLogRecordFactory(make_record)
