"""Getting a NextCloud app password for photo-relay and storing it (mode 0600).

Two ways: Login Flow v2 (the person logs in and grants access in a browser; we never see
their password) or an app password they created themselves and paste. Either way the
credentials are checked against the server (status.php, then the current user, which also
gives the user id DAV paths need) before anything is written.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
from pydantic import SecretStr

from app.errors import ConfigurationError, PhotoRelayError, TargetUnavailable
from app.targets.nextcloud.api import NextcloudApi
from app.targets.nextcloud.credentials import NextcloudCredentials, save_credentials

__all__ = [
    "FLOW_LIFETIME_SECONDS",
    "POLL_INTERVAL_SECONDS",
    "GrantedLogin",
    "LoginFlow",
    "LoginNotGranted",
    "check_login",
    "login_with_app_password",
    "login_with_flow",
    "start_login_flow",
    "wait_for_grant",
]

log = logging.getLogger(__name__)

# NextCloud deletes a flow 20 minutes after it started (LoginFlowV2Mapper lifetime).
FLOW_LIFETIME_SECONDS = 1200.0
POLL_INTERVAL_SECONDS = 2.0
MAX_POLL_INTERVAL_SECONDS = 30.0


class LoginNotGranted(PhotoRelayError):
    """Nobody granted access in the browser before the login flow expired."""


@dataclass(frozen=True)
class LoginFlow:
    """A started Login Flow v2: the page to show the person, and where we wait for the grant."""

    login_url: str
    poll_endpoint: str
    poll_token: SecretStr


@dataclass(frozen=True)
class GrantedLogin:
    server: str
    login_name: str
    app_password: SecretStr


async def start_login_flow(api: NextcloudApi) -> LoginFlow:
    """POST /index.php/login/v2 (anonymous; our User-Agent names the app password)."""
    action = "starting the login flow (index.php/login/v2)"
    response = await api.send("POST", f"{api.server}/index.php/login/v2", action)
    api.refuse(response, action)
    try:
        data = response.json()
        flow = LoginFlow(
            login_url=str(data["login"]),
            poll_endpoint=str(data["poll"]["endpoint"]),
            poll_token=SecretStr(str(data["poll"]["token"])),
        )
    except (ValueError, KeyError, TypeError):
        raise ConfigurationError(
            f"{api.server} did not start a NextCloud login flow (its reply is not Login Flow "
            "v2). Is this NextCloud 16 or newer? Otherwise create an app password in "
            "Settings › Security and use --login NAME --app-password."
        ) from None
    log.info("nextcloud.login_flow_started server=%s", api.server)
    return flow


async def wait_for_grant(
    api: NextcloudApi,
    flow: LoginFlow,
    *,
    interval: float = POLL_INTERVAL_SECONDS,
    lifetime: float = FLOW_LIFETIME_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> GrantedLogin:
    """Poll every `interval` seconds until access is granted or the flow's lifetime is over.

    The poll answers 404 until the person grants access, then 200 exactly once. Network
    trouble, 5xx and 429 while waiting are not fatal: the flow lives on the server, so we
    keep polling (after a 429 at half the pace each time, up to every 30 s).
    """
    deadline = clock() + lifetime
    polls = 0
    while True:
        polls += 1
        try:
            response = await api.send(
                "POST",
                flow.poll_endpoint,
                "polling the login flow",
                data={"token": flow.poll_token.get_secret_value()},
            )
        except TargetUnavailable as exc:
            log.warning("nextcloud.login_poll_failed polls=%d reason=%s", polls, exc.message)
        else:
            code = response.status_code
            if code == 200:
                log.info("nextcloud.login_granted server=%s polls=%d", api.server, polls)
                return _granted(response, api.server)
            if code == 429:
                interval = min(interval * 2, MAX_POLL_INTERVAL_SECONDS)
            elif code != 404 and code < 500:
                api.refuse(response, "polling the login flow")
            if code != 404:
                log.warning("nextcloud.login_poll_failed polls=%d status=%d", polls, code)
        remaining = deadline - clock()
        if remaining <= 0:
            raise LoginNotGranted(
                f"Nobody granted access within {_duration(lifetime)}, so the login link has "
                "expired. Run the command again and grant access in the browser."
            )
        await anyio.sleep(min(interval, remaining))


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} minutes" if seconds >= 60 else f"{seconds:g} seconds"


def _granted(response: httpx.Response, server: str) -> GrantedLogin:
    try:
        data = response.json()
        return GrantedLogin(
            server=str(data["server"]),
            login_name=str(data["loginName"]),
            app_password=SecretStr(str(data["appPassword"])),
        )
    except (ValueError, KeyError, TypeError):
        raise ConfigurationError(
            f"NextCloud at {server} granted access but its reply lacks the app password; the "
            "grant cannot be read twice, so run the command again."
        ) from None


async def check_login(
    server_url: str, login_name: str, app_password: SecretStr
) -> NextcloudCredentials:
    """Prove the login works (status.php, then the current user) and return it with its uid."""
    async with NextcloudApi(server_url, login_name=login_name, app_password=app_password) as api:
        await api.require_usable()
        user_id = await api.current_user_id()
        return NextcloudCredentials(
            server=api.server, login_name=login_name, app_password=app_password, user_id=user_id
        )


async def login_with_flow(
    server_url: str,
    credentials_file: Path,
    *,
    show: Callable[[LoginFlow], None],
    interval: float = POLL_INTERVAL_SECONDS,
    lifetime: float = FLOW_LIFETIME_SECONDS,
) -> NextcloudCredentials:
    """Run Login Flow v2 end to end and store the credentials it yields."""
    async with NextcloudApi(server_url) as api:
        await api.require_usable()
        flow = await start_login_flow(api)
        show(flow)
        granted = await wait_for_grant(api, flow, interval=interval, lifetime=lifetime)
    # We keep the address we just reached rather than granted.server: behind a proxy
    # NextCloud's idea of its own URL (overwrite.cli.url) can be wrong for this machine.
    try:
        credentials = await check_login(server_url, granted.login_name, granted.app_password)
    except PhotoRelayError as exc:
        # NextCloud hands the app password out only once, so it is lost with this run.
        raise type(exc)(
            f"Access was granted, but checking it failed: {exc.message} In NextCloud, "
            "remove the new photo-relay entry under Settings › Security › Devices & "
            "sessions, then run the command again."
        ) from exc
    save_credentials(credentials_file, credentials)
    log.info(
        "nextcloud.credentials_saved server=%s user=%s", credentials.server, credentials.user_id
    )
    return credentials


async def login_with_app_password(
    server_url: str, login_name: str, app_password: SecretStr, credentials_file: Path
) -> NextcloudCredentials:
    """Check a pasted app password against the server; store it only if it works."""
    credentials = await check_login(server_url, login_name, app_password)
    save_credentials(credentials_file, credentials)
    log.info(
        "nextcloud.credentials_saved server=%s user=%s", credentials.server, credentials.user_id
    )
    return credentials
