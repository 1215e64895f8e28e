"""Helpers for the status page tests: log in like a browser, make an item fail for real."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import httpx

from app.config import Settings
from tests.conftest import Service, make_settings, sha256_hex
from tests.support import samples

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@contextmanager
def logged_in(service: Service) -> Iterator[httpx.Client]:
    """A client holding a session cookie, obtained through the login form."""
    with httpx.Client(base_url=service.base_url, timeout=30) as client:
        reply = client.post("/login", data={"token": service.admin_token})
        assert reply.status_code == 303, reply.text
        yield client


def csrf_token(client: httpx.Client, path: str = "/") -> str:
    match = CSRF.search(client.get(path).text)
    assert match, "the page has no CSRF token"
    return match.group(1)


def upload(service: Service, data: bytes, name: str) -> dict[str, object]:
    with service.device() as client:
        reply = client.put(
            f"/v1/blobs/{sha256_hex(data)}",
            content=data,
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    assert reply.status_code in (200, 201), reply.text
    result: dict[str, object] = reply.json()
    return result


def blocked_library_settings(tmp_path: Path, **overrides: object) -> Settings:
    """A library whose `2024` is a file, so copying a 2024 photo fails; one attempt only."""
    library = tmp_path / "library"
    library.mkdir()
    (library / "2024").write_text("in the way")
    values: dict[str, object] = {"target_folder": str(library), "relay_max_attempts": 1}
    values.update(overrides)
    return make_settings(tmp_path, **values)


def photo_from_2024(seed: int = 0) -> bytes:
    return samples.jpeg(datetime(2024, 5, 1, 21, 4), seed=seed)
