"""The one mapping from a destination's HTTP replies and broken connections to `app.errors`.

Used by the WebDAV and NextCloud targets, NextCloud's status/OCS/login API, `photo-relay
nextcloud login` and `check`, so every caller tells "try later" from "stop and tell the
owner" the same way. Only the success codes a caller documents count (a 200 with an error
page is a failure). The table, for a reply that is not a success:

| reply                              | error                                            |
|------------------------------------|--------------------------------------------------|
| 403 or 413 saying "quota" (FILES)  | TargetFull (pause), as 507                       |
| 401 (FILES: 403 too), no login     | ConfigurationError (a proxy wants a password)    |
| 401 (FILES: 403 too)               | TargetAuthFailed (pause; never retried alone)    |
| 412                                | NameTaken                                        |
| 413                                | TooLarge (a TargetRejected; chunking may help)   |
| 429                                | TargetUnavailable, after Retry-After             |
| 503 naming maintenance (Sabre)     | TargetMaintenance (pause, attempts not counted)  |
| 507                                | TargetFull (pause)                               |
| other 5xx                          | TargetUnavailable (Retry-After on 503)           |
| 3xx                                | FILES: TargetUnavailable; API: ConfigurationError |
| anything else (400, 404, 405, ...) | FILES: TargetUnavailable; API: ConfigurationError |

FILES are WebDAV requests, where a miss is transient (a folder removed meanwhile: the
relay creates it again); API requests go to addresses every NextCloud has (status.php,
OCS, Login Flow), so a miss means the address is not a NextCloud. Timeouts and dropped
connections are TargetUnavailable (the outcome is unknown).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Container
from contextlib import asynccontextmanager
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from enum import Enum

import httpx

from app.clock import now
from app.errors import (
    ConfigurationError,
    NameTaken,
    PhotoRelayError,
    TargetAuthFailed,
    TargetFull,
    TargetMaintenance,
    TargetRejected,
    TargetUnavailable,
)

__all__ = [
    "Endpoint",
    "Peer",
    "Reply",
    "TooLarge",
    "failure_for",
    "maintenance",
    "require",
    "transport_errors",
]

_SABRE_MESSAGE = re.compile(r"<s:message>(.*?)</s:message>", re.S)
_SABRE_EXCEPTION = re.compile(r"<s:exception>(.*?)</s:exception>", re.S)
# How servers word a quota refusal: NextCloud's QuotaPlugin ("Insufficient space in ..."),
# Sabre's InsufficientStorage exception, ownCloud and others ("Quota exceeded").
_QUOTA_WORDS = re.compile(r"quota|insufficient ?(space|storage)|not enough space", re.I)
# Sabre's messages for NextCloud's maintenance mode and a pending upgrade (MaintenancePlugin).
_MAINTENANCE_MESSAGES = ("System in maintenance mode", "Upgrade needed")
_EXAMPLE_ADDRESS = "e.g. https://cloud.example.org or https://example.org/nextcloud"


class TooLarge(TargetRejected):
    """413: the server (or a proxy before it) refuses a body this large; chunking may help.

    Permanent for the relay: waiting never makes the body smaller, so unless the target can
    switch to chunks the item is `failed` with the fix (raise the server's body size limit).
    """


class Endpoint(Enum):
    """What kind of address a request went to; decides what an unexpected reply means."""

    FILES = "files"  # WebDAV: files and folders
    API = "api"  # status.php, OCS, Login Flow: every NextCloud answers these


@dataclass(frozen=True)
class Peer:
    """The server as messages name it, and what they may tell the person to do.

    `address` is NextCloud's base URL (for `photo-relay nextcloud login ADDRESS`); None for
    a plain WebDAV server. `login` is who we are there; None for anonymous requests.
    """

    name: str
    login: str | None = None
    address: str | None = None

    @property
    def nextcloud(self) -> bool:
        return self.address is not None


@dataclass(frozen=True)
class Reply:
    """The parts of an HTTP reply the mapping reads."""

    status: int
    reason: str = "no reason given"
    retry_after: float | None = None
    location: str | None = None
    exception: str = ""  # Sabre's exception class, e.g. Sabre\DAV\Exception\InsufficientStorage

    @classmethod
    def of(cls, response: httpx.Response) -> Reply:
        is_xml = "xml" in response.headers.get("content-type", "")
        found = _SABRE_EXCEPTION.search(response.text[:2000]) if is_xml else None
        return cls(
            status=response.status_code,
            reason=_reason(response),
            retry_after=_retry_after(response),
            location=response.headers.get("Location"),
            exception=found.group(1).strip() if found else "",
        )

    @property
    def says_quota(self) -> bool:
        """Whether the reply's words say the user's quota or the disk ran out."""
        return bool(_QUOTA_WORDS.search(f"{self.exception} {self.reason}"))


def _reason(response: httpx.Response) -> str:
    """A short reason from a Sabre XML error body, else the HTTP phrase (no HTML pages)."""
    is_xml = "xml" in response.headers.get("content-type", "")
    found = _SABRE_MESSAGE.search(response.text[:2000]) if is_xml else None
    if found:
        return found.group(1).strip()[:200]
    return response.reason_phrase or "no reason given"


def _retry_after(response: httpx.Response) -> float | None:
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


def maintenance(reply: Reply, peer: Peer, action: str) -> TargetMaintenance:
    return TargetMaintenance(
        f"{peer.name} is in maintenance mode (HTTP {reply.status} while {action}); "
        "photo-relay waits and carries on when it is back, without counting this as a "
        "failed attempt.",
        retry_after=reply.retry_after,
    )


def failure_for(
    reply: Reply | httpx.Response, action: str, peer: Peer, endpoint: Endpoint = Endpoint.FILES
) -> PhotoRelayError:
    """The error a reply that is not a success means; `action` says what we tried, in words."""
    if isinstance(reply, httpx.Response):
        reply = Reply.of(reply)
    code = reply.status
    detail = f"HTTP {code} while {action}: {reply.reason}"
    if code == 507 or (code in (403, 413) and endpoint is Endpoint.FILES and reply.says_quota):
        return TargetFull(
            f"{peer.name} is full ({detail}). Free space or raise the quota; photo-relay looks "
            "again every few minutes and keeps the files safe at home meanwhile."
        )
    if code == 401 or (code == 403 and endpoint is Endpoint.FILES):
        return _refused_login(peer, detail, action, endpoint)
    if code == 412:
        return NameTaken(f"Something already exists there ({detail}).")
    if code == 413:
        return TooLarge(
            f"{peer.name} refuses a file this large ({detail}). Raise the upload size limit of "
            "the web server in front of it (e.g. client_max_body_size in nginx), then retry."
        )
    if code == 429:
        return TargetUnavailable(_slow_down(peer, detail), retry_after=reply.retry_after)
    if code == 503 and reply.reason.startswith(_MAINTENANCE_MESSAGES):
        return maintenance(reply, peer, action)
    if code >= 500:
        return TargetUnavailable(
            f"{peer.name} failed ({detail}). photo-relay tries again later; if this persists, "
            "look at the server's log.",
            retry_after=reply.retry_after if code == 503 else None,
        )
    if endpoint is Endpoint.FILES:
        return TargetUnavailable(f"{peer.name} did not accept the request ({detail}).")
    where = peer.address or peer.name
    if 300 <= code < 400:
        return ConfigurationError(
            f"{where} redirects {action} to {reply.location or 'another address'}. Use "
            "NextCloud's own address (the one it redirects to, usually https://...)."
        )
    return ConfigurationError(
        f"{where} does not look like a NextCloud server ({detail}). Give the address you "
        f"open NextCloud at in a browser, {_EXAMPLE_ADDRESS}."
    )


def _refused_login(peer: Peer, detail: str, action: str, endpoint: Endpoint) -> PhotoRelayError:
    if peer.login is None:
        return ConfigurationError(
            f"{peer.address or peer.name} asks for a login while {action}, which NextCloud "
            "itself does not: a proxy in front of it probably wants its own password. Give "
            "an address that reaches NextCloud directly."
        )
    if peer.nextcloud:
        fix = (
            "The app password is wrong or was revoked (it must be an app password, not the "
            "account's own password), or this user may not write to the folder. Get a new one "
            f"with `photo-relay nextcloud login {peer.address}`"
        )
    else:
        fix = (
            "Check PHOTO_RELAY_TARGET_USER and PHOTO_RELAY_TARGET_PASSWORD, and that this "
            "user may write to the folder"
        )
    resume = ", then resume with `photo-relay retry`" if endpoint is Endpoint.FILES else ""
    return TargetAuthFailed(
        f"{peer.name} rejected the credentials: it rejected the login {peer.login!r} "
        f"({detail}). {fix}{resume}. photo-relay does not try a rejected login again on its "
        "own, so the server's brute-force protection never locks out your devices."
    )


def _slow_down(peer: Peer, detail: str) -> str:
    text = f"{peer.name} asks photo-relay to slow down ({detail})."
    if peer.nextcloud:
        text += (
            " After failed logins NextCloud throttles this address (brute-force protection):"
            " fix the credentials, wait, or ask the admin to reset it"
            " (occ security:bruteforce:reset <ip>)."
        )
    return text


def require(
    response: httpx.Response,
    ok: Container[int],
    action: str,
    peer: Peer,
    endpoint: Endpoint = Endpoint.FILES,
) -> httpx.Response:
    """Return `response` if its status is one of `ok`, else raise what its status means."""
    if response.status_code in ok:
        return response
    raise failure_for(response, action, peer, endpoint)


@asynccontextmanager
async def transport_errors(action: str, peer: Peer) -> AsyncIterator[None]:
    """Turn timeouts and broken connections into TargetUnavailable (outcome unknown)."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise TargetUnavailable(
            f"{peer.name} did not answer in time while {action} ({type(exc).__name__}). "
            "Check that the server is up and reachable from this machine."
        ) from exc
    except httpx.TransportError as exc:
        raise TargetUnavailable(
            f"Cannot reach {peer.name} while {action}: {exc or type(exc).__name__}. Check the "
            "address, that the server is running, and that this machine can reach it."
        ) from exc
