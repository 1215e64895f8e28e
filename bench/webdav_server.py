"""A plain WsgiDAV server for the benchmarks: `python -m bench.webdav_server ROOT PORT`.

Configured the way someone would run it for speed: anonymous access, no lock manager, no
property manager, no directory browser or CORS layer, no request logging, 1 MiB blocks,
cheroot with enough threads for the concurrent clients. It writes into ROOT on the same disk
as the photo-relay spool, and (like WsgiDAV itself) does not fsync what it receives.
"""

from __future__ import annotations

import logging
import sys

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


def main() -> None:
    root, port = sys.argv[1], int(sys.argv[2])
    logging.getLogger("wsgidav").setLevel(logging.ERROR)
    server = wsgi.Server(("127.0.0.1", port), build_app(root), numthreads=8)
    try:
        server.start()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
