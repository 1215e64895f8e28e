"""NextCloud's non-file side: status.php, OCS capabilities, the current user, DAV features.

One small async client (from `app.targets.client`) used by `photo-relay nextcloud login`,
`check` and the NextCloud target, which lends it its own connection. Every failure is
mapped by `app.targets.replies` (these are its API endpoints: a miss means "not a
NextCloud"), so messages tell a person what to do. `status` is the one reader of
status.php. The app password is only ever put into the Authorization header; it is never
logged or part of a message.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
from pydantic import SecretStr

from app.errors import ConfigurationError, TargetUnavailable
from app.targets.client import DEFAULT_TIMEOUT_SECONDS, open_client
from app.targets.replies import Endpoint, Peer, Reply, failure_for, require, transport_errors

__all__ = [
    "Capabilities",
    "NextcloudApi",
    "ServerStatus",
    "normalise_server_url",
]

log = logging.getLogger(__name__)

# Where people paste NextCloud addresses from: the browser bar or a WebDAV setting.
_PATH_MARKERS = ("/index.php", "/remote.php", "/status.php", "/ocs/", "/apps/", "/login")
_SUCCESS = range(200, 300)


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
    """A client bound to one NextCloud server and (optionally) one login.

    With `client`, the requests go through that one (the target's, already logged in) and
    closing the API leaves it open.
    """

    def __init__(
        self,
        server_url: str,
        *,
        login_name: str | None = None,
        app_password: SecretStr | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.server = normalise_server_url(server_url)
        self.login_name = login_name
        self.peer = Peer(f"NextCloud at {self.server}", login_name, self.server)
        self._owns_client = client is None
        self._client = client or open_client(
            login=login_name, password=app_password, timeout=timeout
        )

    async def __aenter__(self) -> NextcloudApi:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def send(self, method: str, url: str, action: str, **kwargs: Any) -> httpx.Response:
        """One request; network failures become TargetUnavailable. Status not checked."""
        async with transport_errors(action, self.peer):
            return await self._client.request(method, url, **kwargs)

    def refuse(self, response: httpx.Response, action: str) -> None:
        """Raise the error a reply that is not 2xx means (replies' API column)."""
        require(response, _SUCCESS, action, self.peer, Endpoint.API)

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
        """What status.php says (the one place it is read); raise if it is no NextCloud's.

        Maintenance is reported, not raised: the target asks this to tell a maintenance
        pause from an outage. `require_usable` raises for it.
        """
        response = await self.send("GET", f"{self.server}/status.php", "reading status.php")
        self.refuse(response, "reading status.php")
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
        return status

    async def require_usable(self) -> ServerStatus:
        """status.php, raising unless the server is installed and can take uploads now."""
        status = await self.status()
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
        action = f"reading {what}"
        response = await self.send(
            "GET",
            f"{self.server}/ocs/v1.php/{path}",
            action,
            params={"format": "json"},
            headers={"OCS-APIRequest": "true", "Accept": "application/json"},
        )
        self.refuse(response, action)
        body = self._json(response, what).get("ocs")
        meta = body.get("meta") if isinstance(body, dict) else None
        if not isinstance(meta, dict) or not isinstance(body, dict):
            raise ConfigurationError(
                f"{self.server} does not look like a NextCloud server: {what} is not an OCS "
                "reply. Give the address you open NextCloud at in a browser."
            )
        code = meta.get("statuscode")
        if code == 997:  # OCS v1's "not logged in", inside an HTTP 200
            raise failure_for(Reply(401, "not logged in"), action, self.peer, Endpoint.API)
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
        action = "asking the WebDAV endpoint for its features"
        response = await self.send("OPTIONS", self.files_url(user_id), action)
        if response.status_code in (401, 429) or response.status_code >= 500:
            self.refuse(response, action)
        if not 200 <= response.status_code < 300:
            return None
        header = ",".join(response.headers.get_list("DAV"))
        return frozenset(item.strip() for item in header.split(",") if item.strip())
