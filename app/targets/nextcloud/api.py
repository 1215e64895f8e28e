"""NextCloud's non-file side: status.php, OCS capabilities, the current user, DAV features.

One small async httpx client used by `photo-relay nextcloud login` and `check`. Every
failure becomes an `app.errors` type whose message tells a person what to do:
unreachable, 5xx or maintenance -> TargetUnavailable; 401 -> TargetAuthFailed; an address
that is not a NextCloud -> ConfigurationError. The app password is only ever put into the
Authorization header; it is never logged or part of a message.
"""

from __future__ import annotations

import json
import logging
import socket
from dataclasses import dataclass
from importlib import metadata
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
from pydantic import SecretStr

from app.errors import ConfigurationError, TargetAuthFailed, TargetUnavailable

__all__ = [
    "Capabilities",
    "NextcloudApi",
    "ServerStatus",
    "normalise_server_url",
    "user_agent",
]

log = logging.getLogger(__name__)

# Where people paste NextCloud addresses from: the browser bar or a WebDAV setting.
_PATH_MARKERS = ("/index.php", "/remote.php", "/status.php", "/ocs/", "/apps/", "/login")


def user_agent() -> str:
    """Our User-Agent; NextCloud names the app password after it in the user's device list."""
    try:
        version = metadata.version("photo-relay")
    except metadata.PackageNotFoundError:  # running from a bare checkout
        version = "dev"
    return f"photo-relay/{version} ({socket.gethostname()})"


def normalise_server_url(url: str) -> str:
    """NextCloud's base URL from what a person typed: scheme added, page paths cut off."""
    raw = url.strip()
    if not raw:
        raise ConfigurationError("No NextCloud address given, e.g. https://cloud.example.org.")
    if "://" not in raw:
        raw = "https://" + raw
    parts = urlsplit(raw)
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise ConfigurationError(
            f"{url!r} is not a web address. Give the address you open NextCloud at in a "
            "browser, e.g. https://cloud.example.org or https://example.org/nextcloud."
        )
    path = parts.path
    for marker in _PATH_MARKERS:
        if marker in path:
            path = path[: path.index(marker)]
    return urlunsplit((parts.scheme, parts.netloc, path.rstrip("/"), "", ""))


@dataclass(frozen=True)
class ServerStatus:
    """What `status.php` says (no login needed)."""

    installed: bool
    maintenance: bool
    needs_db_upgrade: bool
    version: str
    version_string: str
    product_name: str


@dataclass(frozen=True)
class Capabilities:
    """The capability keys photo-relay cares about (nextcloud-protocol.md §1)."""

    version: str | None
    dav_chunking: str | None
    bulk_upload: str | None
    chunked_upload_max_size: int | None
    forbidden_filenames: tuple[str, ...]
    forbidden_basenames: tuple[str, ...]
    forbidden_characters: tuple[str, ...]
    forbidden_extensions: tuple[str, ...]
    bruteforce_delay_ms: int

    @property
    def chunked_upload(self) -> bool:
        return bool(self.dav_chunking)

    @classmethod
    def from_ocs(cls, data: dict[str, Any]) -> Capabilities:
        caps = data.get("capabilities") or {}
        dav = caps.get("dav") or {}
        files = caps.get("files") or {}
        chunked = files.get("chunked_upload") or {}
        max_size = chunked.get("max_size")
        return cls(
            version=(data.get("version") or {}).get("string"),
            dav_chunking=_text(dav.get("chunking")),
            bulk_upload=_text(dav.get("bulkupload")),
            chunked_upload_max_size=max_size if isinstance(max_size, int) else None,
            forbidden_filenames=_texts(
                files.get("forbidden_filenames") or files.get("blacklisted_files")
            ),
            forbidden_basenames=_texts(files.get("forbidden_filename_basenames")),
            forbidden_characters=_texts(files.get("forbidden_filename_characters")),
            forbidden_extensions=_texts(files.get("forbidden_filename_extensions")),
            bruteforce_delay_ms=int((caps.get("bruteforce") or {}).get("delay") or 0),
        )


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "", False) else None


def _texts(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


class NextcloudApi:
    """An httpx client bound to one NextCloud server and (optionally) one login."""

    def __init__(
        self,
        server_url: str,
        *,
        login_name: str | None = None,
        app_password: SecretStr | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.server = normalise_server_url(server_url)
        self.login_name = login_name
        auth = (
            httpx.BasicAuth(login_name, app_password.get_secret_value())
            if login_name is not None and app_password is not None
            else None
        )
        self._client = httpx.AsyncClient(
            auth=auth,
            timeout=timeout,
            follow_redirects=False,
            headers={"User-Agent": user_agent()},
        )

    async def __aenter__(self) -> NextcloudApi:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._client.aclose()

    async def send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One request; network failures become TargetUnavailable with the address in words."""
        try:
            return await self._client.request(method, url, **kwargs)
        except httpx.TimeoutException as exc:
            raise TargetUnavailable(
                f"NextCloud at {self.server} did not answer in time ({type(exc).__name__}). "
                "Check that the server is up and reachable from this machine."
            ) from exc
        except httpx.TransportError as exc:
            raise TargetUnavailable(
                f"Cannot reach NextCloud at {self.server}: {exc or type(exc).__name__}. Check "
                "the address, that the server is running, and that this machine can reach it."
            ) from exc

    def refuse(self, response: httpx.Response, what: str) -> None:
        """Raise the error a failed reply means; return quietly on 2xx."""
        self.raise_for(response.status_code, what, response.headers.get("Location"))

    def raise_for(self, code: int, what: str, location: str | None = None) -> None:
        """Raise the error HTTP status `code` means while doing `what`; 2xx passes."""
        if 200 <= code < 300:
            return
        if code == 401 and self.login_name is None:
            raise ConfigurationError(
                f"{self.server} asks for a login before {what}, which NextCloud itself does "
                "not: a proxy in front of it probably wants its own password. Give an address "
                "that reaches NextCloud directly."
            )
        if code == 401:
            raise TargetAuthFailed(
                f"NextCloud at {self.server} rejected the login {self.login_name!r} ({what}): "
                "the app password is wrong or was revoked (it must be an app password, not "
                "the account's own password). Get a new one with "
                f"`photo-relay nextcloud login {self.server}`. photo-relay does not retry "
                "rejected logins, so NextCloud's brute-force protection does not lock out "
                "this network."
            )
        if code == 429:
            raise TargetUnavailable(
                f"NextCloud at {self.server} is throttling logins from this address after "
                "failed attempts (brute-force protection). Fix the credentials, wait, or ask "
                "the admin to reset it (occ security:bruteforce:reset <ip>)."
            )
        if code == 503:
            raise TargetUnavailable(
                f"NextCloud at {self.server} is unavailable (503 while reading {what}); it is "
                "probably in maintenance mode or being upgraded. Try again when it is back."
            )
        if code >= 500:
            raise TargetUnavailable(
                f"NextCloud at {self.server} failed with {code} while reading {what}. "
                "Try again later; if it persists, look at the server's log."
            )
        if 300 <= code < 400:
            raise ConfigurationError(
                f"{self.server} redirects {what} to {location or 'another address'}. Use "
                "NextCloud's own address (the one it redirects to, usually https://...)."
            )
        raise ConfigurationError(
            f"{self.server} does not look like a NextCloud server: {what} answered {code}. "
            "Give the address you open NextCloud at in a browser, e.g. "
            "https://cloud.example.org or https://example.org/nextcloud."
        )

    def _json(self, response: httpx.Response, what: str) -> dict[str, Any]:
        try:
            data = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            data = None
        if not isinstance(data, dict):
            raise ConfigurationError(
                f"{self.server} does not look like a NextCloud server: {what} is not NextCloud's "
                "JSON. Give the address you open NextCloud at in a browser, e.g. "
                "https://cloud.example.org or https://example.org/nextcloud."
            )
        return data

    async def status(self) -> ServerStatus:
        """Read status.php; raise if the server cannot take uploads now or is no NextCloud."""
        response = await self.send("GET", f"{self.server}/status.php")
        self.refuse(response, "status.php")
        data = self._json(response, "status.php")
        if "installed" not in data or "version" not in data:
            raise ConfigurationError(
                f"{self.server} does not look like a NextCloud server: its status.php lacks "
                "NextCloud's fields. Give the address you open NextCloud at in a browser."
            )
        status = ServerStatus(
            installed=bool(data["installed"]),
            maintenance=bool(data.get("maintenance")),
            needs_db_upgrade=bool(data.get("needsDbUpgrade")),
            version=str(data["version"]),
            version_string=str(data.get("versionstring") or data["version"]),
            product_name=str(data.get("productname") or "Nextcloud"),
        )
        log.info(
            "nextcloud.status server=%s version=%s maintenance=%s",
            self.server,
            status.version_string,
            status.maintenance,
        )
        if not status.installed:
            raise ConfigurationError(
                f"NextCloud at {self.server} is not installed yet: finish its setup in a "
                "browser first."
            )
        if status.maintenance:
            raise TargetUnavailable(
                f"NextCloud at {self.server} is in maintenance mode. Nothing can be uploaded "
                "until the admin turns it off (occ maintenance:mode --off); photo-relay keeps "
                "photos at home until then."
            )
        if status.needs_db_upgrade:
            raise TargetUnavailable(
                f"NextCloud at {self.server} is waiting for an upgrade to finish (occ upgrade "
                "or the web updater). Try again once it is done."
            )
        return status

    async def ocs(self, path: str, what: str) -> dict[str, Any]:
        """GET an OCS v1 endpoint as JSON and return its `ocs.data`."""
        response = await self.send(
            "GET",
            f"{self.server}/ocs/v1.php/{path}",
            params={"format": "json"},
            headers={"OCS-APIRequest": "true", "Accept": "application/json"},
        )
        self.refuse(response, what)
        body = self._json(response, what).get("ocs")
        meta = body.get("meta") if isinstance(body, dict) else None
        if not isinstance(meta, dict) or not isinstance(body, dict):
            raise ConfigurationError(
                f"{self.server} does not look like a NextCloud server: {what} is not an OCS "
                "reply. Give the address you open NextCloud at in a browser."
            )
        code = meta.get("statuscode")
        if code == 997:  # OCS v1's "not logged in"
            self.raise_for(401, what)
        if code not in (100, 200):
            raise TargetUnavailable(
                f"NextCloud at {self.server} refused {what}: {meta.get('message') or code}."
            )
        data = body.get("data")
        return data if isinstance(data, dict) else {}

    async def capabilities(self) -> Capabilities:
        return Capabilities.from_ocs(await self.ocs("cloud/capabilities", "the capabilities"))

    async def current_user_id(self) -> str:
        """The user id (what DAV paths need), checking the credentials on the way."""
        if self.login_name is None:
            raise ConfigurationError(
                f"No credentials for NextCloud at {self.server}. Run "
                f"`photo-relay nextcloud login {self.server}`."
            )
        data = await self.ocs("cloud/user", "the current user")
        user_id = data.get("id")
        if not isinstance(user_id, str) or not user_id:
            raise ConfigurationError(
                f"NextCloud at {self.server} did not say which user {self.login_name!r} is."
            )
        return user_id

    def files_url(self, user_id: str, path: str = "") -> str:
        """The WebDAV URL of `path` in the user's files (percent-encoded, NFC left to caller)."""
        tail = "/".join(quote(part, safe="") for part in path.strip("/").split("/") if part)
        return f"{self.server}/remote.php/dav/files/{quote(user_id, safe='')}/{tail}"

    async def dav_features(self, user_id: str) -> frozenset[str] | None:
        """The DAV features the files endpoint announces (OPTIONS), or None if it will not say.

        `nextcloud-checksum-update` there means `PATCH X-Recalculate-Hash` works.
        """
        response = await self.send("OPTIONS", self.files_url(user_id))
        if response.status_code in (401, 429) or response.status_code >= 500:
            self.refuse(response, "the WebDAV endpoint")
        if not 200 <= response.status_code < 300:
            return None
        header = ",".join(response.headers.get_list("DAV"))
        return frozenset(item.strip() for item in header.split(",") if item.strip())
