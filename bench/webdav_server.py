"""A plain WsgiDAV server for the benchmarks: `python -m bench.webdav_server ROOT PORT`.

Configured the way someone would run it for speed: anonymous access, no lock manager, no
property manager, no directory browser or CORS layer, no request logging, 1 MiB blocks,
cheroot with enough threads for the concurrent clients. It writes into ROOT on the same disk
as the photo-relay spool, and (like WsgiDAV itself) does not fsync what it receives.
With COUNTS, it counts the requests by method and writes them there as JSON when it is
terminated, so a bench can say how many requests each client needed per file.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from types import FrameType
from typing import Any

from cheroot import wsgi
from wsgidav.error_printer import ErrorPrinter
from wsgidav.http_authenticator import HTTPAuthenticator
from wsgidav.request_resolver import RequestResolver
from wsgidav.wsgidav_app import WsgiDAVApp

BLOCK_SIZE = 1024 * 1024


def build_app(root: str) -> WsgiDAVApp:
    config = {
        "provider_mapping": {"/": root},
        "simple_dc": {"user_mapping": {"*": True}},
        "lock_storage": False,
        "property_manager": None,
        "middleware_stack": [ErrorPrinter, HTTPAuthenticator, RequestResolver],
        "block_size": BLOCK_SIZE,
        "verbose": 0,
        "logging": {"enable": False},
        "dir_browser": {"enable": False},
    }
    return WsgiDAVApp(config)


class RequestCounter:
    """Counts requests by method in front of the WebDAV app (a dict update per request)."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.counts: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        with self._lock:
            self.counts[environ["REQUEST_METHOD"]] += 1
        return self.app(environ, start_response)

    def write_on_exit(self, path: str) -> None:
        def write(_signum: int, _frame: FrameType | None) -> None:
            with open(path, "w") as handle:
                json.dump(dict(self.counts), handle)
            os._exit(0)

        signal.signal(signal.SIGTERM, write)


def main() -> None:
    root, port = sys.argv[1], int(sys.argv[2])
    logging.getLogger("wsgidav").setLevel(logging.ERROR)
    app: Any = build_app(root)
    if len(sys.argv) > 3:
        app = RequestCounter(app)
        app.write_on_exit(sys.argv[3])
    server = wsgi.Server(("127.0.0.1", port), app, numthreads=8)
    try:
        server.start()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
