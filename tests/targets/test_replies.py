"""The one mapping from HTTP replies to app errors, and the one client every caller uses."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pydantic import SecretStr

from app.errors import (
    ConfigurationError,
    NameTaken,
    PhotoRelayError,
    TargetAuthFailed,
    TargetFull,
    TargetMaintenance,
    TargetUnavailable,
)
from app.targets.client import user_agent
from app.targets.nextcloud.api import NextcloudApi
from app.targets.replies import Endpoint, Peer, Reply, TooLarge, failure_for
from tests.support.webdav_server import DavServer
from tests.targets.test_dav_target import put, source, target_for

NEXTCLOUD = Peer("NextCloud", "alice", "https://cloud.example.org")
WEBDAV = Peer("The WebDAV server", "alice")
ANONYMOUS = Peer("NextCloud at https://cloud.example.org", None, "https://cloud.example.org")
MAINTENANCE = "System in maintenance mode."

FILES, API = Endpoint.FILES, Endpoint.API


@pytest.mark.parametrize(
    ("reply", "endpoint", "error"),
    [
        (Reply(401), FILES, TargetAuthFailed),
        (Reply(403), FILES, TargetAuthFailed),
        (Reply(401), API, TargetAuthFailed),
        (Reply(403), API, ConfigurationError),
        (Reply(412), FILES, NameTaken),
        (Reply(413), FILES, TooLarge),
        (Reply(429, retry_after=30), FILES, TargetUnavailable),
        (Reply(429), API, TargetUnavailable),
        (Reply(503, MAINTENANCE), FILES, TargetMaintenance),
        (Reply(503, MAINTENANCE), API, TargetMaintenance),
        (Reply(503, "Service Unavailable"), FILES, TargetUnavailable),
        (Reply(507), FILES, TargetFull),
        (Reply(507), API, TargetFull),
        (Reply(500), API, TargetUnavailable),
        (Reply(502), FILES, TargetUnavailable),
        (Reply(301, location="https://x.example/"), FILES, TargetUnavailable),
        (Reply(301, location="https://x.example/"), API, ConfigurationError),
        (Reply(404), FILES, TargetUnavailable),
        (Reply(404), API, ConfigurationError),
        (Reply(409), FILES, TargetUnavailable),
        (Reply(400), API, ConfigurationError),
    ],
)
def test_each_reply_maps_to_one_error(
    reply: Reply, endpoint: Endpoint, error: type[PhotoRelayError]
) -> None:
    """The table in app/targets/replies.py: the exact error type per status and endpoint."""
    found = failure_for(reply, "doing something", NEXTCLOUD, endpoint)
    assert type(found) is error, found.message
    assert "doing something" in found.message  # what was being done, in words


def test_retry_after_is_kept_where_the_server_may_ask_for_it() -> None:
    """Retry-After counts on 429 and 503 only; a 502 retries on the relay's own schedule."""
    for status in (429, 503):
        found = failure_for(Reply(status, retry_after=42.0), "uploading", NEXTCLOUD)
        assert isinstance(found, TargetUnavailable) and found.retry_after == 42.0
    other = failure_for(Reply(502, retry_after=42.0), "uploading", NEXTCLOUD)
    assert isinstance(other, TargetUnavailable) and other.retry_after is None


def test_a_refused_login_names_the_login_and_the_fix_for_the_server_kind() -> None:
    """NextCloud: the login and `nextcloud login ADDRESS`; WebDAV: the settings to check."""
    nextcloud = failure_for(Reply(401), "uploading", NEXTCLOUD).message
    assert "NextCloud rejected the credentials" in nextcloud
    assert "rejected the login 'alice'" in nextcloud
    assert "photo-relay nextcloud login https://cloud.example.org" in nextcloud
    assert "photo-relay retry" in nextcloud  # the relay paused: say how to resume
    webdav = failure_for(Reply(401), "uploading", WEBDAV).message
    assert "PHOTO_RELAY_TARGET_PASSWORD" in webdav and "nextcloud login" not in webdav
    login = failure_for(Reply(401), "reading the current user", NEXTCLOUD, API).message
    assert "photo-relay retry" not in login  # nothing was paused by a login or check


def test_a_login_asked_of_an_anonymous_request_points_at_a_proxy() -> None:
    """401 to a request sent without credentials: NextCloud would not ask, so a proxy did."""
    found = failure_for(Reply(401), "reading status.php", ANONYMOUS, API)
    assert isinstance(found, ConfigurationError)
    assert "proxy" in found.message and "https://cloud.example.org" in found.message


@pytest.mark.nextcloud(ocs=True)
def test_target_and_api_use_the_same_client_construction(
    tmp_path: Path, nextcloud: DavServer
) -> None:
    """Files, OCS and status.php requests all carry the one User-Agent and the login."""
    file, _, sha = source(tmp_path, 2000)

    async def both() -> None:
        await put(target_for(tmp_path, nextcloud), "a/IMG.JPG", file, sha)
        password = SecretStr(nextcloud.password)
        async with NextcloudApi(
            nextcloud.base_url, login_name=nextcloud.login, app_password=password
        ) as api:
            await api.status()
            await api.capabilities()

    asyncio.run(both())
    seen = nextcloud.faults.headers
    paths = {h["path"] for h in seen}
    assert "/status.php" in paths and "/ocs/v1.php/cloud/capabilities" in paths
    assert any(p.startswith("/remote.php/dav/files/") for p in paths)
    assert {h.get("HTTP_USER_AGENT") for h in seen} == {user_agent()}
    authorised = {h["path"] for h in seen if h.get("HTTP_AUTHORIZATION", "").startswith("Basic ")}
    assert authorised == paths
