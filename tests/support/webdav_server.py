"""A real WebDAV server for tests: WsgiDAV under cheroot on 127.0.0.1, NextCloud's URL shape.

Files are served at `/remote.php/dav/files/<user>/` from a folder on disk, with Basic auth.
`nextcloud=True` puts the NextCloud layer (tests/support/nextcloud_dav.py) in front: chunked upload
v2, X-OC-Mtime, X-Hash, OC-Checksum, PATCH X-Recalculate-Hash. `ocs=True` stacks the
OCS/login layer (tests/support/nextcloud_ocs.py) on top: status.php, capabilities, /cloud/user, and
a login name (e.g. an e-mail address) that differs from the user id in DAV URLs. The fault layer
(tests/support/faults.py) is always outermost, so tests can break any request and count them all.
The server can be stopped and started again on the same port ("the target is down").
Tests get it from the `nextcloud` fixture (tests/conftest.py, quirks by marker) or, plain,
from `webdav_server`.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from cheroot import wsgi
from wsgidav.wsgidav_app import WsgiDAVApp

from tests.support.faults import FaultLayer
from tests.support.nextcloud_dav import NextcloudLayer, Quirks
from tests.support.nextcloud_ocs import NextcloudOcs
from tests.support.servers import find_free_port, wait_for

__all__ = ["DavServer"]


class DavServer:
    """WsgiDAV (+ optional NextCloud layer) behind a fault layer, in a background thread."""

    def __init__(
        self,
        root: Path,
        *,
        user: str = "alice",
        password: str = "app-password-1",
        nextcloud: bool,
        ocs: bool = False,
        login: str | None = None,
        quirks: Quirks | None = None,
    ) -> None:
        self.user, self.password = user, password
        self.login = login or user  # what the person types; `user` is the uid
        self.files_dir = root / "files"
        self.uploads_dir = root / "uploads"
        self.files_dir.mkdir(parents=True, exist_ok=True)
        self.uploads_dir.mkdir(parents=True, exist_ok=True)
        self.port = find_free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.files_prefix = f"/remote.php/dav/files/{user}"
        self.files_url = self.base_url + self.files_prefix
        logging.getLogger("wsgidav").setLevel(logging.ERROR)
        dav = WsgiDAVApp(
            {
                "host": "127.0.0.1",
                "port": self.port,
                "provider_mapping": {self.files_prefix: str(self.files_dir)},
                "http_authenticator": {
                    "domain_controller": None,
                    "accept_basic": True,
                    "accept_digest": False,
                    "default_to_digest": False,
                },
                "simple_dc": {"user_mapping": {"*": {user: {"password": password}}}},
                "dir_browser": {"enable": False},
                "verbose": 0,
                "logging": {"enable": False},
                "lock_storage": True,
                "property_manager": True,
            }
        )
        app: Any = dav
        self.nextcloud: NextcloudLayer | None = None
        if nextcloud:
            self.nextcloud = NextcloudLayer(
                dav,
                files_dir=self.files_dir,
                uploads_dir=self.uploads_dir,
                user=user,
                password=password,
                quirks=quirks,
            )
            app = self.nextcloud
        self._ocs: NextcloudOcs | None = None
        if ocs:
            self._ocs = NextcloudOcs(app)
            self._ocs.add_user(self.login, uid=user, app_password=password)
            app = self._ocs
        self.faults = FaultLayer(app)
        self._server: wsgi.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def ocs(self) -> NextcloudOcs:
        """The OCS and Login Flow side; only a server made with `ocs=True` has one."""
        assert self._ocs is not None, "this server has no OCS side: make it with ocs=True"
        return self._ocs

    def start(self) -> DavServer:
        server = wsgi.Server(("127.0.0.1", self.port), self.faults, numthreads=8)
        server.prepare()
        self._server = server
        self._thread = threading.Thread(target=server.serve, daemon=True)
        self._thread.start()
        wait_for(lambda: server.ready, what="the WebDAV server")
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def file(self, relative: str) -> Path:
        return self.files_dir / relative

    def all_files(self) -> dict[str, bytes]:
        """Every file on the server (relative path -> bytes), for exact comparisons.

        Safe while the relay is working: a file renamed (a temp copy's MOVE) or deleted
        between the listing and its read is left out, as if listed a moment later.
        """
        found: dict[str, bytes] = {}
        for path in sorted(self.files_dir.rglob("*")):
            try:
                found[str(path.relative_to(self.files_dir))] = path.read_bytes()
            except (FileNotFoundError, IsADirectoryError):
                continue
        return found
