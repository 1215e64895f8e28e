"""NextCloud's OCS and login side for tests: a WSGI layer following nextcloud-protocol.md §1-2.

Models:
- `GET /status.php` (no auth): installed, maintenance, needsDbUpgrade, version, ...
- `GET /ocs/v1.php/cloud/capabilities` and `/ocs/v1.php/cloud/user`: OCS v1 (HTTP 200,
  meta.statuscode 100); JSON only with `format=json` or `Accept: application/json`, else
  XML (NextCloud's default); Basic auth with app passwords; bad credentials get 401.
  Strict on one point the doc asks of clients: OCS calls without `OCS-APIRequest: true`
  are refused (400), so a client that forgets the header fails here.
- Login Flow v2: `POST /index.php/login/v2` (records the User-Agent as the device name),
  `POST <poll endpoint>` with form `token=…`: 404 `[]` until the test calls `grant()`, then
  200 `{server, loginName, appPassword}` exactly once, then 404 again; a flow expires after
  `flow_lifetime` seconds (1200 in NextCloud).
- Brute-force bookkeeping: failed logins are counted; capabilities' `bruteforce.delay`
  reports 0.1 s x 2^failures (capped at 25 s) as NextCloud does, without sleeping.
- Maintenance mode: everything except status.php answers 503.
- A fault knob for tests: the next `poll_failures` polls answer 503 (a proxy hiccup).
Everything else goes to the optional `inner` WSGI app (e.g. WsgiDAV at
/remote.php/dav/files/<uid>/); `/remote.php/` requests first need valid Basic credentials,
else a Sabre-style 401 (XML body, `WWW-Authenticate: Basic realm="Nextcloud"`). As in
NextCloud, a login name (an e-mail address) is resolved to the user: the inner app sees
Basic credentials for the uid, and every reply carries `X-User-Id`.
- Forbidden names (NC >= 30, `forbidden_*` in capabilities, settable per test): a PUT, MKCOL
  or MOVE destination under /remote.php/dav/files/ whose last name breaks a rule gets 400.
"""

from __future__ import annotations

import base64
import json
import secrets
import string
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from cheroot import wsgi

from tests.support.servers import find_free_port, wait_for

__all__ = ["LoginFlowRecord", "NextcloudOcs", "serving"]

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

SABRE_401 = (
    '<?xml version="1.0" encoding="utf-8"?>\n'
    '<d:error xmlns:d="DAV:" xmlns:s="http://sabredav.org/ns">\n'
    "  <s:exception>Sabre\\DAV\\Exception\\NotAuthenticated</s:exception>\n"
    "  <s:message>Username or password was incorrect</s:message>\n"
    "</d:error>\n"
)
SABRE_503 = (
    '<?xml version="1.0" encoding="utf-8"?>\n'
    '<d:error xmlns:d="DAV:" xmlns:s="http://sabredav.org/ns">\n'
    "  <s:exception>Sabre\\DAV\\Exception\\ServiceUnavailable</s:exception>\n"
    "  <s:message>System in maintenance mode.</s:message>\n"
    "</d:error>\n"
)
ALPHANUMERIC = string.ascii_letters + string.digits


def _random(length: int) -> str:
    return "".join(secrets.choice(ALPHANUMERIC) for _ in range(length))


@dataclass
class User:
    uid: str
    app_passwords: dict[str, str] = field(default_factory=dict)  # password -> device name


@dataclass
class LoginFlowRecord:
    """One Login Flow v2 as the server keeps it."""

    poll_token: str
    login_id: str
    user_agent: str
    started: float
    grant: tuple[str, str] | None = None  # (login name, app password) once granted
    delivered: bool = False
    polls: int = 0


class NextcloudOcs:
    """The OCS/login layer; wraps `inner` for everything it does not model."""

    def __init__(
        self,
        inner: WsgiApp | None = None,
        *,
        version: str = "30.0.4",
        chunking: bool = True,
        flow_lifetime: float = 1200.0,
    ) -> None:
        self.inner = inner
        self.version = version
        self.chunking = chunking
        self.flow_lifetime = flow_lifetime
        self.maintenance = False
        self.users: dict[str, User] = {}
        self.flows: list[LoginFlowRecord] = []
        self.failed_logins = 0
        self.poll_failures = 0
        self.forbidden_filenames = [".htaccess"]
        self.forbidden_basenames: list[str] = []
        self.forbidden_characters: list[str] = []
        self.forbidden_extensions = [".part", ".filepart"]
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    # -- what tests call ---------------------------------------------------------------

    def add_user(
        self, login_name: str, uid: str | None = None, app_password: str | None = None
    ) -> str:
        """Create a user with one app password (returned; random unless given)."""
        user = self.users.setdefault(login_name, User(uid or login_name))
        password = app_password or _random(72)
        user.app_passwords[password] = "created in the web UI"
        return password

    def pending_flows(self) -> list[LoginFlowRecord]:
        with self._lock:
            return [f for f in self.flows if f.grant is None and not self._expired(f)]

    def grant(self, login_name: str, app_password: str | None = None) -> str:
        """The person logs in and grants the one pending flow; returns the new app password.

        `app_password` fixes it, for stacking on a WebDAV server with its own credentials.
        """
        with self._lock:
            pending = [f for f in self.flows if f.grant is None and not self._expired(f)]
            assert len(pending) == 1, f"expected one pending login flow, found {len(pending)}"
            user = self.users[login_name]
            password = app_password or _random(72)
            user.app_passwords[password] = pending[0].user_agent
            pending[0].grant = (login_name, password)
            return password

    def device_names(self, login_name: str) -> list[str]:
        return list(self.users[login_name].app_passwords.values())

    # -- WSGI --------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO", "")
        with self._lock:
            self.requests.append((method, path))
        if path == "/status.php" and method == "GET":
            return self._json(start_response, "200 OK", self._status())
        if self.maintenance:
            unavailable = "503 Service Unavailable"
            return self._reply(start_response, unavailable, SABRE_503, "application/xml")
        if path == "/index.php/login/v2" and method == "POST":
            return self._start_flow(environ, start_response)
        if path == "/index.php/login/v2/poll" and method == "POST":
            return self._poll(environ, start_response)
        if path.startswith("/index.php/login/v2/flow/") and method == "GET":
            page = "<html><body>Connect to your account</body></html>"
            return self._reply(start_response, "200 OK", page, "text/html")
        if path.startswith("/ocs/v1.php/cloud/"):
            return self._ocs(environ, start_response, path.removeprefix("/ocs/v1.php/cloud/"))
        if path.startswith("/remote.php/"):
            user = self._authenticate(environ)
            if not isinstance(user, User):
                return self._sabre_401(start_response)
            return self._as_user(user, environ, start_response)
        if self.inner is not None:
            return self.inner(environ, start_response)
        return self._reply(start_response, "404 Not Found", "Not found", "text/plain")

    def _as_user(
        self, user: User, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Any:
        """Hand a DAV request on as the uid, refusing forbidden names first."""
        refused = self._forbidden_name(environ)
        if refused is not None:
            body = (
                '<?xml version="1.0" encoding="utf-8"?>\n<d:error xmlns:d="DAV:" '
                'xmlns:s="http://sabredav.org/ns"><s:exception>OCA\\DAV\\Connector\\Sabre'
                f"\\Exception\\InvalidPath</s:exception><s:message>{refused}</s:message></d:error>"
            )
            return self._reply(start_response, "400 Bad Request", body, "application/xml")
        password = base64.b64decode(environ["HTTP_AUTHORIZATION"][6:]).decode().partition(":")[2]
        credentials = base64.b64encode(f"{user.uid}:{password}".encode()).decode()
        environ["HTTP_AUTHORIZATION"] = f"Basic {credentials}"

        def with_user_id(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
            return start_response(status, [*headers, ("X-User-Id", user.uid)], *rest)

        if self.inner is None:
            return self._reply(with_user_id, "404 Not Found", "Not found", "text/plain")
        return self.inner(environ, with_user_id)

    def _forbidden_name(self, environ: dict[str, Any]) -> str | None:
        """Why the name a write would create is refused (FilenameValidator), or None."""
        method = environ["REQUEST_METHOD"]
        if method == "MOVE":
            target = urlsplit(environ.get("HTTP_DESTINATION", "")).path
        elif method in ("PUT", "MKCOL"):
            target = environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8")
        else:
            return None
        if "/remote.php/dav/files/" not in target:
            return None
        name = unquote(target.rstrip("/").rpartition("/")[2])
        lowered = name.lower()
        if lowered in (n.lower() for n in self.forbidden_filenames):
            return f'"{name}" is a forbidden file or folder name.'
        if lowered.partition(".")[0] in (n.lower() for n in self.forbidden_basenames):
            return f'"{name}" has a forbidden file or folder name.'
        for character in self.forbidden_characters:
            if character in name:
                return f'"{character}" is not allowed inside a file or folder name.'
        if any(lowered.endswith(e.lower()) for e in self.forbidden_extensions):
            return f'"{name}" has a forbidden file type.'
        return None

    def _status(self) -> dict[str, Any]:
        return {
            "installed": True,
            "maintenance": self.maintenance,
            "needsDbUpgrade": False,
            "version": f"{self.version}.1",
            "versionstring": self.version,
            "edition": "",
            "productname": "Nextcloud",
            "extendedSupport": False,
        }

    def _expired(self, flow: LoginFlowRecord) -> bool:
        return time.monotonic() - flow.started > self.flow_lifetime

    def _start_flow(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        flow = LoginFlowRecord(
            poll_token=_random(128),
            login_id=_random(128),
            user_agent=environ.get("HTTP_USER_AGENT", ""),
            started=time.monotonic(),
        )
        with self._lock:
            self.flows.append(flow)
        base = _base_url(environ)
        reply = {
            "poll": {"token": flow.poll_token, "endpoint": f"{base}/index.php/login/v2/poll"},
            "login": f"{base}/index.php/login/v2/flow/{flow.login_id}",
        }
        return self._json(start_response, "200 OK", reply)

    def _poll(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        form = parse_qs(environ["wsgi.input"].read(length).decode())
        token = (form.get("token") or [""])[0]
        with self._lock:
            flow = next((f for f in self.flows if f.poll_token == token), None)
            if flow is not None:
                flow.polls += 1
            if self.poll_failures:
                self.poll_failures -= 1
                unavailable = "503 Service Unavailable"
                return self._reply(start_response, unavailable, "proxy hiccup", "text/plain")
            ready = (
                flow is not None
                and flow.grant is not None
                and not flow.delivered
                and not self._expired(flow)
            )
            if flow is not None and ready and flow.grant is not None:
                flow.delivered = True  # NextCloud deletes the row on read
                login_name, password = flow.grant
                reply = {
                    "server": _base_url(environ),
                    "loginName": login_name,
                    "appPassword": password,
                }
                return self._json(start_response, "200 OK", reply)
        return self._json(start_response, "404 Not Found", [])

    def _authenticate(self, environ: dict[str, Any]) -> User | bool | None:
        """The user, None without credentials, False (and a recorded failure) for wrong ones."""
        header = environ.get("HTTP_AUTHORIZATION", "")
        if not header.startswith("Basic "):
            return None
        try:
            login_name, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        user = self.users.get(login_name)
        if user is None or password not in user.app_passwords:
            with self._lock:
                self.failed_logins += 1
            return False
        return user

    def _ocs(self, environ: dict[str, Any], start_response: Callable[..., Any], name: str) -> Any:
        if environ.get("HTTP_OCS_APIREQUEST") != "true":
            return self._reply(
                start_response, "400 Bad Request", "OCS-APIRequest header missing", "text/plain"
            )
        user = self._authenticate(environ)
        if user is False or (name == "user" and user is None):
            start_response(
                "401 Unauthorized",
                [
                    ("Content-Type", "application/json; charset=utf-8"),
                    ("WWW-Authenticate", 'Basic realm="Nextcloud", charset="UTF-8"'),
                ],
            )
            return [json.dumps(_ocs_envelope(997, "Current user is not logged in", [])).encode()]
        if name == "capabilities":
            data: dict[str, Any] = self._capabilities()
        elif name == "user" and isinstance(user, User):
            data = {"id": user.uid, "display-name": user.uid, "email": None}
        else:
            return self._reply(start_response, "404 Not Found", "Not found", "text/plain")
        wants_json = "format=json" in environ.get("QUERY_STRING", "") or "application/json" in (
            environ.get("HTTP_ACCEPT", "")
        )
        if not wants_json:
            xml = "<?xml version='1.0'?><ocs><meta><statuscode>100</statuscode></meta></ocs>"
            return self._reply(start_response, "200 OK", xml, "text/xml")
        return self._json(start_response, "200 OK", _ocs_envelope(100, "OK", data))

    def _capabilities(self) -> dict[str, Any]:
        major, minor, micro = (int(p) for p in self.version.split("."))
        dav: dict[str, Any] = {"bulkupload": "1.0"}
        if self.chunking:
            dav["chunking"] = "1.0"
        delay = min(25000, 100 * 2**self.failed_logins) if self.failed_logins else 0
        return {
            "version": {
                "major": major,
                "minor": minor,
                "micro": micro,
                "string": self.version,
                "edition": "",
                "extendedSupport": False,
            },
            "capabilities": {
                "core": {"pollinterval": 60, "webdav-root": "remote.php/webdav"},
                "bruteforce": {"delay": delay, "allow-listed": False},
                "dav": dav,
                "files": {
                    "bigfilechunking": True,
                    "chunked_upload": {"max_size": 104857600, "max_parallel_count": 5},
                    "forbidden_filenames": self.forbidden_filenames,
                    "forbidden_filename_basenames": self.forbidden_basenames,
                    "forbidden_filename_characters": self.forbidden_characters,
                    "forbidden_filename_extensions": self.forbidden_extensions,
                },
            },
        }

    def _sabre_401(self, start_response: Callable[..., Any]) -> list[bytes]:
        start_response(
            "401 Unauthorized",
            [
                ("Content-Type", "application/xml; charset=utf-8"),
                ("WWW-Authenticate", 'Basic realm="Nextcloud", charset="UTF-8"'),
            ],
        )
        return [SABRE_401.encode()]

    @staticmethod
    def _json(start_response: Callable[..., Any], status: str, data: Any) -> list[bytes]:
        return NextcloudOcs._reply(
            start_response, status, json.dumps(data), "application/json; charset=utf-8"
        )

    @staticmethod
    def _reply(
        start_response: Callable[..., Any], status: str, body: str, content_type: str
    ) -> list[bytes]:
        raw = body.encode()
        start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(raw)))])
        return [raw]


def _ocs_envelope(code: int, message: str, data: Any) -> dict[str, Any]:
    status = "ok" if code == 100 else "failure"
    meta = {"status": status, "statuscode": code, "message": message}
    return {"ocs": {"meta": {**meta, "totalitems": "", "itemsperpage": ""}, "data": data}}


def _base_url(environ: dict[str, Any]) -> str:
    host = environ.get("HTTP_HOST") or f"{environ['SERVER_NAME']}:{environ['SERVER_PORT']}"
    return f"{environ['wsgi.url_scheme']}://{host}{environ.get('SCRIPT_NAME', '')}"


@contextmanager
def serving(app: WsgiApp) -> Iterator[str]:
    """Serve `app` with cheroot on a free 127.0.0.1 port; yields the base URL."""
    port = find_free_port()
    server = wsgi.Server(("127.0.0.1", port), app, numthreads=4)
    server.prepare()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    wait_for(lambda: server.ready, what="the test NextCloud")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        thread.join(timeout=10)
