"""The log redaction: each shape of secret is replaced, and ordinary log lines are left alone."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from uvicorn.logging import AccessFormatter

from app import log_redaction
from app.log_redaction import REDACTED, redact

DEVICE = "prd_" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z-_AbCdEfGh"
SHA256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    log_redaction.install()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("tests.redaction")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield logger, stream
    finally:
        logger.removeHandler(handler)


@pytest.mark.parametrize(
    "line",
    [
        f"Authorization: Bearer {DEVICE}",
        "authorization: Basic YWxpY2U6c2VjcmV0LXBhc3N3b3Jk",
        "Cookie: photo_relay_session=Zx81kqPz0aLmNb7cWv3eRt5yUi9oPa2sDf4gHj6kLl",
        "{'set-cookie': 'photo_relay_session=Zx81kqPz0aLmNb7cWv3eRt5yUi9o; HttpOnly'}",
        "GET /v1/status?token=abcdefgh12345678 HTTP/1.1",
        "app password AbCdE-fGhIj-KlMnO-pQrSt-UvWxY stored",
        "loginflow appPassword=" + "a1B2c3D4e5" * 7 + "xy",
    ],
)
def test_each_shape_of_secret_is_redacted(line: str) -> None:
    """Credentials in headers, cookies, queries and NextCloud app passwords are replaced."""
    cleaned = redact(line)
    assert REDACTED in cleaned
    for secret in ("Ab3dEf6h", "YWxpY2U6", "Zx81kqPz", "abcdefgh1234", "AbCdE-fGhIj", "a1B2c3D4"):
        assert secret not in cleaned


def test_ordinary_lines_keep_their_hashes_paths_and_numbers() -> None:
    """A SHA-256, a path and counts are not secrets and stay readable."""
    line = f"relay.verified sha256={SHA256} path=2024/05/IMG_0001.HEIC attempts=2"
    assert redact(line) == line


def test_a_header_value_logged_apart_from_its_name_is_redacted(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    """websockets logs '< %s: %s' with name and value as arguments; the value goes."""
    logger, stream = captured
    logger.debug("< %s: %s", "cookie", "photo_relay_session=short")
    logger.debug("< %s: %s", "user-agent", "curl/8.0")
    assert stream.getvalue().splitlines() == ["< cookie: [redacted]", "< user-agent: curl/8.0"]


def test_registered_secrets_are_redacted_in_messages_and_tracebacks(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    """A configured password is replaced wherever it shows, an exception's text included."""
    logger, stream = captured
    log_redaction.add_secret("hunter2-but-longer")
    try:
        raise ValueError("login refused for password hunter2-but-longer")
    except ValueError:
        logger.exception("target.problem with %s", "hunter2-but-longer")
    assert "hunter2-but-longer" not in stream.getvalue()
    assert stream.getvalue().startswith(f"target.problem with {REDACTED}\nTraceback")


def test_a_broken_format_string_still_has_its_traceback_redacted() -> None:
    """A record whose arguments do not fit its format is still cleaned to the end."""
    log_redaction.install()
    log_redaction.add_secret("hunter3-but-longer")
    try:
        raise ValueError("login refused for password hunter3-but-longer")
    except ValueError as exc:
        record = logging.getLogger("tests.redaction").makeRecord(
            "tests.redaction",
            logging.ERROR,
            __file__,
            1,
            "%s and %s",
            ("one",),
            (type(exc), exc, exc.__traceback__),
        )
    assert record.exc_text is not None
    assert "hunter3-but-longer" not in record.exc_text
    assert REDACTED in record.exc_text


def test_uvicorn_access_lines_keep_their_shape(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    """The access formatter reads the record's arguments; they stay a tuple, redacted."""
    logger, stream = captured
    handler = logger.handlers[0]
    handler.setFormatter(AccessFormatter("%(client_addr)s %(request_line)s %(status_code)s"))
    access = logging.getLogger("uvicorn.access")  # the logger whose merged line is not re-read
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    try:
        access.info(
            '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5", "GET", f"/x?token={DEVICE}", "1.1", 200
        )
    finally:
        access.removeHandler(handler)
    assert stream.getvalue().strip() == "127.0.0.1:5 GET /x?token=[redacted] HTTP/1.1 200 OK"
