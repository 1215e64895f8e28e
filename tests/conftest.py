"""Shared fixtures: a running photo-relay on 127.0.0.1, devices, tokens and clients."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.config import Settings
from app.store.db import Database
from app.store.state import State
from app.tokens import hash_token, new_token
from tests.support.nextcloud_dav import Quirks
from tests.support.servers import ThreadedService, find_free_port
from tests.support.webdav_server import DavServer


@pytest.fixture(autouse=True)
def homes_of_its_own(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Every test, and every command it starts, has its own config and data homes.

    photo-relay's default data folder and the file where `serve` records it live there
    (app/config.py), so no test reads or writes the real ones (as root: /var/lib/photo-relay).
    """
    homes = tmp_path_factory.mktemp("homes")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(homes / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(homes / "data"))
    return homes


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def add_device(data_dir: Path, name: str) -> str:
    """Create a device the way `photo-relay device add` does; returns its token."""
    settings = Settings(data_dir=data_dir)
    db = Database(settings.database_path)
    try:
        token = new_token("prd")
        State(db).add_device(name, hash_token(token))
        return token
    finally:
        db.close()


@dataclass
class Service:
    """A running service plus what tests need to talk to it."""

    server: ThreadedService
    settings: Settings
    device_token: str

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def admin_token(self) -> str:
        return str(self.server.app_services.admin_token)

    @property
    def library(self) -> Path:
        return self.settings.local_library_dir

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=60)

    def device(self) -> httpx.Client:
        return self.client(self.device_token)

    def admin(self) -> httpx.Client:
        return self.client(self.admin_token)

    def add_device(self, name: str) -> str:
        return add_device(self.settings.data_dir, name)


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": tmp_path / "data",
        "port": find_free_port(),
        "min_free_bytes": 0,
        "relay_retry_base_seconds": 0.05,
        "relay_retry_max_seconds": 0.5,
        "relay_probe_seconds": 0.2,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@contextmanager
def running(settings: Settings) -> Iterator[Service]:
    """photo-relay with `settings`, running in a thread, with one device 'phone'."""
    token = add_device(settings.data_dir, "phone")
    server = ThreadedService(settings)
    server.start()
    try:
        yield Service(server, settings, token)
    finally:
        server.stop()


@pytest.fixture
def service(settings: Settings) -> Iterator[Service]:
    """photo-relay with the local target, running in a thread, and one device 'phone'."""
    with running(settings) as started:
        yield started


@pytest.fixture
def start_service(tmp_path: Path) -> Iterator[Callable[..., Service]]:
    """Starts photo-relay with settings overrides (and a device 'phone'); stopped after."""
    with ExitStack() as stack:

        def start(**overrides: object) -> Service:
            return stack.enter_context(running(make_settings(tmp_path, **overrides)))

        yield start


# -- WebDAV / NextCloud servers (NextCloud relay) -------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "nextcloud(**quirks): how the `nextcloud` fixture's server differs from the default "
        "(ocs, login, password, dav_extensions, server quirks; see the fixture)",
    )


@pytest.fixture
def nextcloud(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DavServer]:
    """The test NextCloud on 127.0.0.1: WsgiDAV plus NextCloud's DAV layer, user `alice`.

    By default only the files side, at /remote.php/dav/files/alice/ (chunking v2,
    X-OC-Mtime, X-Hash, OC-Checksum). A test (or module, via `pytestmark`) changes it with
    `@pytest.mark.nextcloud(...)`:
    - `ocs=True`: status.php, OCS (capabilities, current user) and Login Flow v2 in front
      (tests/support/nextcloud_ocs.py), checking app passwords;
    - `login="alice@example.org"`: the login name people type, other than the uid;
    - `password="..."`: the app password (default `app-password-1`);
    - `dav_extensions=False`: plain WsgiDAV behind the OCS side (no mtime, no server hash);
    - the server quirks of tests/support/nextcloud_dav.py's `Quirks` (issue 16), e.g.
      `chunk_sizes_listed=False`, `chunk_delete_refused=True`, `quota_bytes=..`,
      `quota_status=403`, `cut_names_at="?"`, `refused_characters=':?"<>|*'`,
      `trash_bin=True`, `proxy_504_on_move=True`, `max_depth=3`.
    """
    marker = request.node.get_closest_marker("nextcloud")
    options: dict[str, Any] = dict(marker.kwargs) if marker else {}
    extensions = bool(options.pop("dav_extensions", True))
    quirks = Quirks(**{k: options.pop(k) for k in Quirks.names() & options.keys()})
    server = DavServer(
        tmp_path / "nextcloud", nextcloud=extensions, quirks=quirks, **options
    ).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def webdav_server(tmp_path: Path) -> Iterator[DavServer]:
    """Plain WsgiDAV (no NextCloud extensions, no chunked upload) at the same URL shape."""
    server = DavServer(tmp_path / "webdav", nextcloud=False).start()
    try:
        yield server
    finally:
        server.stop()


def remote_settings(tmp_path: Path, server: DavServer, **overrides: object) -> Settings:
    """Settings pointing the relay at `server` (NextCloud or plain WebDAV)."""
    values: dict[str, object] = {
        "target": "nextcloud" if server.nextcloud else "webdav",
        "target_url": server.base_url if server.nextcloud else server.files_url,
        "target_user": server.user,
        "target_password": server.password,
        "target_folder": "/Photos/iPhone",
        "target_timeout_seconds": 10,
    }
    values.update(overrides)
    return make_settings(tmp_path, **values)
