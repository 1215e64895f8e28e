"""`photo-relay serve` itself: the banner, the server, and a restart when the settings file changes.

The banner says what a person needs next, in a form they can copy: the addresses the phone
can use (never 0.0.0.0) and the `photo-relay` command as it can be run from here. A
command such as `nextcloud login` changes the settings file of the data folder; the
running service notices within seconds, finishes the requests in flight and starts again
with the new settings (the same process, re-executed), so nobody has to restart it.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import os
import shutil
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import click
from pydantic import ValidationError

from app.cli.running_service import forget_service_settings, record_service_settings
from app.config import Settings

__all__ = ["SETTINGS_POLL_SECONDS", "command_name", "lan_addresses", "run_server"]

SETTINGS_POLL_SECONDS = 1.0
WILDCARD_HOSTS = ("0.0.0.0", "::", "")


def run_server(
    settings: Settings, header_timeout: float | None, reload_settings: Callable[[], Settings]
) -> bool:
    """Serve until stopped; True when the settings file changed and the caller should restart.

    `reload_settings` reads the settings again as this command did (its flags included), to
    make sure a changed file still gives a valid configuration before restarting for it.
    """
    import uvicorn

    from app.connection_limits import (
        ConnectionLimits,
        connection_cap,
        protocol_with,
        raise_open_file_limit,
    )
    from app.main import WEBSOCKETS, create_app

    limits = ConnectionLimits(max_connections=connection_cap(raise_open_file_limit()))
    if header_timeout is not None:
        limits = dataclasses.replace(limits, header_timeout=header_timeout)
    print_banner(settings)
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        ws=WEBSOCKETS,
        # httptools with limits on what a connection may send before its request runs;
        # measured against h11 in docs/RELIABILITY.md.
        http=protocol_with(limits),
        timeout_graceful_shutdown=10,
    )
    if settings.host in WILDCARD_HOSTS:
        # Its "running on http://0.0.0.0:8000" is no address for a phone; the banner has them.
        logging.getLogger("uvicorn.error").addFilter(_not_the_wildcard_address)
    server = uvicorn.Server(config)
    # The credentials too, when they are in use: a new login with unchanged settings
    # brings a new app password.
    watched: tuple[Path, ...] = (settings.settings_file,)
    if settings.target == "nextcloud":
        watched += (settings.credentials_file,)
    watcher = SettingsWatcher(watched, reload_settings, server)
    watcher.start()
    record_service_settings(settings)
    try:
        server.run()
    finally:
        watcher.stop()
        forget_service_settings(settings)
    return watcher.changed


class SettingsWatcher:
    """Polls the settings and credentials files; on a valid change asks the server to stop
    for a restart."""

    def __init__(
        self, paths: tuple[Path, ...], reload_settings: Callable[[], Settings], server: object
    ) -> None:
        self.paths = paths
        self.reload_settings = reload_settings
        self.server = server
        self.changed = False
        self._seen = [_read(path) for path in paths]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="settings-watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _watch(self) -> None:
        while not self._stop.wait(SETTINGS_POLL_SECONDS):
            now = [_read(path) for path in self.paths]
            if now == self._seen:
                continue
            changed = next(p for p, a, b in zip(self.paths, now, self._seen, strict=True) if a != b)
            self._seen = now
            try:
                self.reload_settings()
            except (ValidationError, click.ClickException) as exc:
                problem = exc.message if isinstance(exc, click.ClickException) else str(exc)
                click.echo(
                    f"{changed} changed, but photo-relay keeps running with the settings it "
                    f"started with. {problem}",
                    err=True,
                )
                continue
            click.echo(f"{changed} changed: photo-relay restarts to use it.")
            self.changed = True
            self.server.should_exit = True  # type: ignore[attr-defined]
            return


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def restart() -> None:
    """Start this very command again, in this process (same PID, same terminal or unit)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, sys.orig_argv)


# -- the banner --------------------------------------------------------------------------


def print_banner(settings: Settings) -> None:
    from app.targets import open_target

    command = command_name()
    click.echo("photo-relay is starting.")
    click.echo(f"  Data folder:        {settings.data_dir.resolve()}")
    click.echo(f"  Photos will land in {open_target(settings).describe()}")
    if settings.host in WILDCARD_HOSTS:
        addresses = lan_addresses()
        urls = [f"http://{_url_host(a)}:{settings.port}" for a in addresses]
        click.echo(f"  Listening on        port {settings.port} of every network of this computer")
        for url in urls:
            click.echo(f"  Phone address:      {url}")
        if not urls:
            click.echo(
                "  Phone address:      none found; use this computer's address on your "
                f"Wi-Fi, port {settings.port}"
            )
    else:
        click.echo(f"  Listening on        http://{_url_host(settings.host)}:{settings.port}")
        if settings.host in ("127.0.0.1", "localhost", "::1"):
            click.echo("  Only this computer can reach it; set --host 0.0.0.0 for your phone.")
    click.echo(f"  Add your phone:     {command} device add my-iphone   (prints its token)")
    click.echo(f"  Connect NextCloud:  {command} nextcloud login https://cloud.example.org")
    click.echo(f"  Admin token:        {command} admin-token")
    sys.stdout.flush()


def _not_the_wildcard_address(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("Uvicorn running on")


def _url_host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def lan_addresses() -> list[str]:
    """This computer's IPv4 addresses another device could reach, without sending a packet.

    Two sources: what the host name resolves to, and the address the kernel would send
    from towards each private network (a UDP "connect" only picks a route; nothing leaves).
    """
    found: list[str] = []
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
        found += [str(info[4][0]) for info in infos]
    except OSError:
        pass
    for probe in ("192.168.0.1", "10.0.0.1", "172.16.0.1"):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            try:
                udp.connect((probe, 9))
                found.append(str(udp.getsockname()[0]))
            except OSError:
                continue
    usable = []
    for text in dict.fromkeys(found):
        address = ipaddress.ip_address(text)
        if not (address.is_loopback or address.is_unspecified or address.is_link_local):
            usable.append(text)
    return usable


def command_name() -> str:
    """`photo-relay` when that runs this program; else the full path that does."""
    script = Path(os.path.abspath(sys.argv[0])) if sys.argv and sys.argv[0] else None
    if script is None or script.name != "photo-relay":
        sibling = Path(sys.executable).with_name("photo-relay")
        script = sibling if sibling.exists() else None
    if script is None:
        return f"{sys.executable} -m app.cli"
    on_path = shutil.which("photo-relay")
    if on_path and Path(on_path).resolve() == script.resolve():
        return "photo-relay"
    return str(script)
