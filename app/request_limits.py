"""Limits on what a request may carry outside an upload body: header size, JSON body size.

The connection layer (app/connection_limits.py, used by `serve`) already refuses request
lines, heads and header counts over its limits before a request exists; this middleware
is the check every server running the app gets (tests run plain uvicorn), and FastAPI
reads a JSON body whole into memory. Both are refused here, before any route runs: 431
for more than 32 KiB of headers, 413 for a non-upload body over 4 MiB (the check
endpoint's 20,000 hashes fit in 1.4 MiB). Upload bodies are streamed to disk and limited
by PHOTO_RELAY_MAX_UPLOAD_BYTES instead.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import PayloadTooLarge

__all__ = ["MAX_HEADER_BYTES", "MAX_JSON_BODY_BYTES", "RequestLimits", "is_upload"]

MAX_HEADER_BYTES = 32 * 1024
MAX_JSON_BODY_BYTES = 4 * 1024 * 1024


def is_upload(path: str) -> bool:
    """Routes whose body is a file streamed to the spool (PUT blobs, forms, Shortcut runs)."""
    return (
        path.startswith("/v1/blobs/")
        or path == "/v1/uploads"
        or (path.startswith("/v1/backup/runs/") and path.endswith("/files"))
    )


def _error(status: int, code: str, message: str) -> tuple[int, bytes]:
    return status, json.dumps({"error": {"code": code, "message": message}}).encode()


def body_too_large() -> PayloadTooLarge:
    return PayloadTooLarge(
        f"This request's body is over {MAX_JSON_BODY_BYTES // 1024 // 1024} MiB, more than "
        "any request but an upload needs; send fewer hashes at a time.",
        code="body_too_large",
    )


class RequestLimits:
    """ASGI middleware: refuses oversized headers and oversized non-upload bodies."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        if sum(len(k) + len(v) + 4 for k, v in headers) > MAX_HEADER_BYTES:
            await self._refuse(
                send,
                *_error(
                    431,
                    "headers_too_large",
                    f"The request's headers are over {MAX_HEADER_BYTES // 1024} KiB; "
                    "nothing was read or stored.",
                ),
            )
            return
        if is_upload(scope["path"]):
            await self.app(scope, receive, send)
            return
        length = dict(headers).get(b"content-length", b"")
        if length.isdigit() and int(length) > MAX_JSON_BODY_BYTES:
            error = body_too_large()
            await self._refuse(send, *_error(error.status, error.code, error.message))
            return
        await self.app(scope, self._counting(receive), send)

    @staticmethod
    def _counting(receive: Receive) -> Receive:
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > MAX_JSON_BODY_BYTES:
                    raise body_too_large()
            return message

        return counted

    @staticmethod
    async def _refuse(send: Send, status: int, body: bytes) -> None:
        response_headers: list[Any] = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": body})
