"""How the relay reads a WebDAV server's replies: success codes and the one retry policy.

Server quirks live here. Only the success codes the protocol documents count (a 200 with
an error page is a failure); every other reply or broken connection becomes a `TargetError`
that tells the relay what to do: retry later (423, 429, 5xx, timeouts, dropped
connections; no earlier than a Retry-After on 429/503 says), pause everything (401/403
credentials, 507 full, 503 maintenance mode), or look at the name (412).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email.utils import parsedate_to_datetime

import httpx

from app.clock import now
from app.errors import (
    NameTaken,
    TargetAuthFailed,
    TargetError,
    TargetFull,
    TargetMaintenance,
    TargetUnavailable,
)

__all__ = ["TooLarge", "failure_for", "maintenance", "require", "retry_after", "transport_errors"]

_SABRE_MESSAGE = re.compile(r"<s:message>(.*?)</s:message>", re.S)
# Sabre's messages for NextCloud's maintenance mode and a pending upgrade (MaintenancePlugin).
_MAINTENANCE_MESSAGES = ("System in maintenance mode", "Upgrade needed")


class TooLarge(TargetUnavailable):
    """413: the server (or a proxy before it) refuses a body this large; chunking may help."""


def _reason(response: httpx.Response) -> str:
    """A short reason from a Sabre XML error body, else the HTTP phrase (no HTML pages)."""
    text = response.text[:2000] if response.headers.get("content-type", "").find("xml") >= 0 else ""
    found = _SABRE_MESSAGE.search(text)
    if found:
        return found.group(1).strip()[:200]
    return response.reason_phrase or "no reason given"


def retry_after(response: httpx.Response) -> float | None:
    """Seconds the Retry-After header asks for (delta-seconds or an HTTP date); None if absent."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, (parsedate_to_datetime(value) - now()).total_seconds())
    except (TypeError, ValueError):
        return None


def maintenance(response: httpx.Response, server: str, action: str) -> TargetMaintenance:
    return TargetMaintenance(
        f"{server} is in maintenance mode (HTTP {response.status_code} while {action}); "
        "photo-relay waits and carries on when it is back, without counting this as a "
        "failed attempt.",
        retry_after=retry_after(response),
    )


def failure_for(response: httpx.Response, action: str, server: str) -> TargetError:
    """The TargetError a failed reply means; `action` says what we tried, in words."""
    code = response.status_code
    detail = f"HTTP {code} while {action}: {_reason(response)}"
    if code in (401, 403):
        return TargetAuthFailed(
            f"{server} rejected the credentials ({detail}). Check the user and app password "
            "(`photo-relay nextcloud login` writes new ones) and that this user may write to "
            "the folder, then resume with `photo-relay retry`. photo-relay does not try again "
            "on its own, so the server's brute-force protection never locks out your devices."
        )
    if code == 507:
        return TargetFull(
            f"{server} is full ({detail}). Free space or raise the quota; photo-relay looks "
            "again every few minutes and keeps the files safe at home meanwhile."
        )
    if code == 412:
        return NameTaken(f"Something already exists there ({detail}).")
    if code == 413:
        return TooLarge(f"{server} refuses a file this large ({detail}).")
    if code == 503 and _reason(response).startswith(_MAINTENANCE_MESSAGES):
        return maintenance(response, server, action)
    wait = retry_after(response) if code in (429, 503) else None
    return TargetUnavailable(f"{server} did not accept the request ({detail}).", retry_after=wait)


def require(response: httpx.Response, ok: set[int], action: str, server: str) -> httpx.Response:
    """Return `response` if its status is one of `ok`, else raise what its status means."""
    if response.status_code in ok:
        return response
    raise failure_for(response, action, server)


@asynccontextmanager
async def transport_errors(action: str, server: str) -> AsyncIterator[None]:
    """Turn timeouts and broken connections into TargetUnavailable (outcome unknown)."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise TargetUnavailable(
            f"{server} did not answer in time while {action} ({type(exc).__name__})."
        ) from exc
    except httpx.TransportError as exc:
        raise TargetUnavailable(
            f"Could not talk to {server} while {action}: {exc or type(exc).__name__}."
        ) from exc
