"""The one way photo-relay opens an HTTP connection to a destination.

The WebDAV and NextCloud targets, `photo-relay nextcloud login` and `check` all get their
client here, so the login, the User-Agent, the timeouts, redirects and TLS are set in one
place. The password goes only into the Basic auth of the client; it is never logged.
"""

from __future__ import annotations

import socket

import httpx
from pydantic import SecretStr

from app import __version__
from app.targets.wire import StreamTransport

__all__ = ["DEFAULT_TIMEOUT_SECONDS", "open_client", "user_agent"]

# For the commands a person waits on (login, check); the relay uses its own setting.
DEFAULT_TIMEOUT_SECONDS = 30.0


def user_agent() -> str:
    """Our User-Agent; NextCloud names the app password after it in the user's device list."""
    return f"photo-relay/{__version__} ({socket.gethostname()})"


def open_client(
    *,
    login: str | None = None,
    password: SecretStr | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    max_connections: int = 10,
) -> httpx.AsyncClient:
    """An async client for one destination, logged in as `login` when a password is given.

    Redirects are never followed: a WebDAV write or a login must not land somewhere else
    unnoticed, so a 3xx is reported (see `replies`). Certificates are always verified
    (httpx's default, with its CA bundle); there is no switch to turn that off.
    """
    auth = (
        httpx.BasicAuth(login, password.get_secret_value())
        if login is not None and password is not None
        else None
    )
    # TLS as httpx would set it up (its CA bundle, always verified); env proxies still go
    # through httpx's own transport.
    transport = StreamTransport(
        ssl_context=httpx.create_ssl_context(verify=True), max_connections=max_connections
    )
    return httpx.AsyncClient(
        auth=auth,
        timeout=httpx.Timeout(timeout),
        limits=httpx.Limits(max_connections=max_connections),
        transport=transport,
        follow_redirects=False,
        verify=True,
        headers={"User-Agent": user_agent()},
    )
