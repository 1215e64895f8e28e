"""How tests send files to photo-relay and wait for the relay, over real HTTP."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import sha256_hex
from tests.support.servers import wait_for

__all__ = ["post_form", "put_blob", "sha256_hex", "wait_verified"]


def put_blob(
    client: httpx.Client,
    data: bytes,
    *,
    name: str | None = None,
    captured_at: str | None = None,
    sha256: str | None = None,
) -> httpx.Response:
    """PUT the bytes to /v1/blobs/{sha256}, naming them in Content-Disposition."""
    headers = {}
    if name is not None:
        headers["Content-Disposition"] = f'attachment; filename="{name}"'
    if captured_at is not None:
        headers["X-Captured-At"] = captured_at
    return client.put(f"/v1/blobs/{sha256 or sha256_hex(data)}", content=data, headers=headers)


def post_form(
    client: httpx.Client,
    files: list[tuple[str, bytes]],
    fields: dict[str, list[str]] | None = None,
    *,
    field_name: str = "file",
) -> httpx.Response:
    """POST the files (name, bytes) as multipart/form-data, with optional text fields."""
    parts = [(field_name, (name, data, "application/octet-stream")) for name, data in files]
    return client.post("/v1/uploads", files=parts, data=fields or {})


def wait_verified(client: httpx.Client, sha256: str, *, timeout: float = 30) -> dict[str, Any]:
    """Poll the receipt until the relay has verified the copy; returns the receipt."""

    def verified() -> dict[str, Any] | None:
        receipt: dict[str, Any] = client.get(f"/v1/items/{sha256}").json()
        return receipt if receipt.get("state") == "verified" else None

    result: dict[str, Any] = wait_for(verified, timeout=timeout, what=f"{sha256[:8]} verified")
    return result
