"""Who may see the status page and its live events: the admin, by session or by token.

A browser logs in once and carries a session cookie; a script may send the admin token
as `Authorization: Bearer`. A device token is refused here: it may upload, not watch.
Requests that carry the cookie must also come from this origin (no cross-site use).
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import HTTPConnection

from app.services import Services
from app.web.page_state import page_state
from app.web.sessions import COOKIE_NAME, Session

__all__ = ["Refused", "Viewer", "identify", "same_origin", "token_kind"]


@dataclass(frozen=True)
class Viewer:
    """The admin; `session` is None when they sent the admin token instead of a cookie."""

    session: Session | None


@dataclass(frozen=True)
class Refused:
    """Credentials were sent but are not the admin's; `reason` says what to do."""

    reason: str


async def token_kind(token: str, services: Services) -> str:
    """'admin', 'device' or 'unknown' (a device token is recognised, never accepted here)."""
    return (await services.token_holder(token)).kind


def refusal(kind: str) -> Refused:
    if kind == "device":
        return Refused(
            "That is a device token: it lets a phone upload, not see the status page. Use the "
            "admin token (`photo-relay admin-token` prints it)."
        )
    return Refused("That is not the admin token. `photo-relay admin-token` prints it.")


def same_origin(connection: HTTPConnection) -> bool:
    """False when a browser says the request comes from another site."""
    origin = connection.headers.get("origin")
    if origin is None:
        return True  # not sent by browsers on same-origin GETs, nor by scripts
    host = connection.headers.get("host", "")
    return origin.partition("://")[2] == host


async def identify(connection: HTTPConnection, services: Services) -> Viewer | Refused | None:
    """The admin, a refusal (wrong or device token), or None (please log in)."""
    header = connection.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        kind = await token_kind(token.strip(), services) if scheme.lower() == "bearer" else ""
        return Viewer(None) if kind == "admin" else refusal(kind)
    session = page_state(connection).sessions.find(connection.cookies.get(COOKIE_NAME))
    if session is None:
        return None
    if not same_origin(connection):
        return Refused("This page does not accept requests from other sites.")
    return Viewer(session)
