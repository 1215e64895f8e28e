"""A WSGI layer that adds NextCloud's WebDAV extensions to WsgiDAV, as nextcloud-protocol.md says.

What it models (section numbers of the protocol brief):
- §3 PUT in the files tree: `X-OC-Mtime` must be an integer > 86400 and is applied after
  the bytes are stored (a bad value turns the write into a 500); `OC-Checksum` is stored
  verbatim, never validated; `X-Hash: sha256` answers `X-Hash-SHA256` computed on the bytes
  written; `X-OC-MTime: accepted` and `OC-FileId` on success.
- §6 PROPFIND lists the stored checksum as `oc:checksums` (only when one is stored).
- §6 `PATCH` with `X-Recalculate-Hash: sha256`: re-reads the file, stores `SHA256:<hex>`,
  answers 204 with `OC-Checksum`.
- §5 chunked upload (the v1 assembly NextCloud uses on local disk): MKCOL
  `/remote.php/dav/uploads/<user>/<id>`, chunk PUTs (numeric names 1..10000), PROPFIND
  Depth 1 listing `.file` plus the chunks, `MOVE .file` with `Destination` (409 missing
  parent, 412 existing destination with `Overwrite: F`, 400 when the chunks do not sum
  to `OC-Total-Length`), applying mtime/checksum/X-Hash, then removing the upload folder;
  DELETE aborts. Everything else goes to WsgiDAV unchanged.

Switchable quirks (`Quirks`, set per test with `@pytest.mark.nextcloud(...)`), each one seen
on a server that claims NextCloud compatibility (issue 16):
- `chunk_sizes_listed=False`: the upload folder's listing has no `getcontentlength`;
- `chunk_delete_refused=True`: DELETE of a single chunk answers 400 (the folder's works);
- `chunk_head=True`: HEAD of a chunk answers its Content-Length (else 405);
- `quota_bytes=N`: the user's quota; files, unassembled chunks and the trash bin count.
  A write past it answers 507 (Sabre's InsufficientStorage), or `quota_status=403` with
  "Quota exceeded"; PROPFIND of a folder lists `quota-available-bytes`;
- `cut_names_at="?"`: a file's name is cut at that character, and success is answered;
- `refused_characters=':?"<>|*'`: PUT, MOVE or MKCOL to a name with one answers 400;
- `trash_bin=True`: DELETE of a file moves it into the trash bin (NextCloud's trash bin
  API at /remote.php/dav/trashbin/<user>/trash: PROPFIND lists, DELETE purges an item);
- `proxy_504_on_move=True`: every MOVE is carried out, then a proxy answers 504;
- `max_depth=N`: MKCOL deeper than N folders answers 405 although nothing is there.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape

__all__ = ["NextcloudLayer", "Quirks"]

StartResponse = Callable[..., Any]
_D = "{DAV:}"
_OC = "{http://owncloud.org/ns}"


def _utf8_path(environ: dict[str, Any]) -> str:
    """PATH_INFO as text (WSGI hands it over as latin-1-decoded bytes)."""
    return str(environ.get("PATH_INFO", "")).encode("latin-1").decode("utf-8")


def _reply(
    start_response: StartResponse,
    status: str,
    body: bytes = b"",
    headers: list[tuple[str, str]] | None = None,
) -> list[bytes]:
    start_response(status, [*(headers or []), ("Content-Length", str(len(body)))])
    return [body]


_OK = "<d:status>HTTP/1.1 200 OK</d:status>"
QUOTA_EXCEEDED = "Insufficient space in /alice/files, 0 B required, 0 B available: Quota exceeded"
INVALID_CHARACTER = "File name contains at least one invalid character"


@dataclass(frozen=True)
class Quirks:
    """How this server differs from NextCloud itself; the default is none (see the module)."""

    chunk_sizes_listed: bool = True
    chunk_delete_refused: bool = False
    chunk_head: bool = False
    quota_bytes: int | None = None
    quota_status: int = 507
    cut_names_at: str = ""
    refused_characters: str = ""
    trash_bin: bool = False
    proxy_504_on_move: bool = False
    max_depth: int | None = None

    @classmethod
    def names(cls) -> set[str]:
        return set(cls.__dataclass_fields__)


MISSING_PARENT = "Files cannot be created in non-existent collections"
BAD_CHUNK_NAME = "Invalid chunk name, must be numeric between 1 and 10000"
DESTINATION_EXISTS = "The destination node already exists, and the overwrite header is set to false"


def _sabre_error(start_response: StartResponse, status: str, message: str) -> list[bytes]:
    body = (
        '<?xml version="1.0" encoding="utf-8"?>\n<d:error xmlns:d="DAV:" '
        'xmlns:s="http://sabredav.org/ns"><s:exception>Sabre\\DAV\\Exception</s:exception>'
        f"<s:message>{escape(message)}</s:message></d:error>"
    ).encode()
    return _reply(start_response, status, body, [("Content-Type", "application/xml")])


class _HashingInput:
    """Passes the request body through while hashing it (the server's X-Hash)."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data: bytes = self.stream.read(size)
        self.digest.update(data)
        return data

    def readline(self, size: int = -1) -> bytes:
        data: bytes = self.stream.readline(size)
        self.digest.update(data)
        return data


def _valid_mtime(value: str | None) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or int(value) <= 86400:
        raise ValueError(f"X-OC-Mtime {value!r} is not an integer above 86400")
    return int(value)


def _proxy_timeout(start_response: StartResponse) -> list[bytes]:
    """What a reverse proxy answers when the server behind it took too long (it finished)."""
    body = b"<html><body><h1>504 Gateway Time-out</h1></body></html>"
    return _reply(start_response, "504 Gateway Time-out", body, [("Content-Type", "text/html")])


def _size_of(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _file_id(path: Path) -> str:
    return f"{path.stat().st_ino % 10**8:08d}ocphotorelay"


class NextcloudLayer:
    """NextCloud's extensions in front of a WsgiDAV app serving the user's files."""

    def __init__(
        self,
        inner: Callable[[dict[str, Any], StartResponse], Iterable[bytes]],
        *,
        files_dir: Path,
        uploads_dir: Path,
        user: str,
        password: str,
        quirks: Quirks | None = None,
    ) -> None:
        self.inner = inner
        self.quirks = quirks or Quirks()
        self.trash_dir = uploads_dir.parent / "trash"
        self.trash_dir.mkdir(parents=True, exist_ok=True)
        self.trash_prefix = f"/remote.php/dav/trashbin/{user}/trash"
        self.files_dir = files_dir
        self.uploads_dir = uploads_dir
        self.user = user
        self.password = password
        self.files_prefix = f"/remote.php/dav/files/{user}"
        self.uploads_prefix = f"/remote.php/dav/uploads/{user}"
        self.checksums: dict[str, str] = {}  # the filecache `checksum` column, by path
        self.mtime_headers: list[str] = []  # every X-OC-Mtime received, for assertions
        self.trashed: dict[str, str] = {}  # trash bin item name -> original path
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = _utf8_path(environ)
        method = environ["REQUEST_METHOD"]
        if path.startswith(self.uploads_prefix):
            if not self._authorised(environ):
                return _sabre_error(start_response, "401 Unauthorized", "No public access")
            return self._uploads(environ, start_response, path[len(self.uploads_prefix) :])
        if path.startswith(self.trash_prefix):
            if not self._authorised(environ):
                return _sabre_error(start_response, "401 Unauthorized", "No public access")
            return self._trash(environ, start_response, path[len(self.trash_prefix) :])
        if path.startswith(self.files_prefix + "/"):
            relative = path[len(self.files_prefix) + 1 :]
            refused = self._refused(environ, start_response, method, relative)
            if refused is not None:
                return refused
            if method == "DELETE" and self.quirks.trash_bin and self._authorised(environ):
                trashed = self._to_trash(start_response, relative)
                if trashed is not None:
                    return trashed
            if method == "MKCOL" and self._too_deep(relative):
                return _sabre_error(start_response, "405 Method Not Allowed", "Not allowed")
            if method == "PUT":
                return self._put(environ, start_response, relative)
            if method == "MOVE":
                return self._move(environ, start_response, relative)
            if method == "PROPFIND":
                return self._propfind(environ, start_response)
            if method == "PATCH" and environ.get("HTTP_X_RECALCULATE_HASH"):
                if not self._authorised(environ):
                    return _sabre_error(start_response, "401 Unauthorized", "No public access")
                return self._recalculate(start_response, relative)
        return self.inner(environ, start_response)

    def _authorised(self, environ: dict[str, Any]) -> bool:
        import base64

        expected = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        return bool(environ.get("HTTP_AUTHORIZATION", "") == f"Basic {expected}")

    # -- quirks ----------------------------------------------------------------------

    def used_bytes(self) -> int:
        """What counts against the quota: files, unassembled chunks, the trash bin."""
        return sum(_size_of(d) for d in (self.files_dir, self.uploads_dir, self.trash_dir))

    def _over_quota(
        self, environ: dict[str, Any], start_response: StartResponse, adding: int
    ) -> list[bytes] | None:
        quota = self.quirks.quota_bytes
        if quota is None or self.used_bytes() + adding <= quota:
            return None
        left = int(environ.get("CONTENT_LENGTH") or 0)
        stream = environ["wsgi.input"]
        while left > 0:  # read what was sent, as a server does before answering
            block = stream.read(min(left, 1 << 20))
            if not block:
                break
            left -= len(block)
        if self.quirks.quota_status == 403:
            return _sabre_error(start_response, "403 Forbidden", QUOTA_EXCEEDED)
        return _sabre_error(start_response, "507 Insufficient Storage", QUOTA_EXCEEDED)

    def _too_deep(self, relative: str) -> bool:
        depth = self.quirks.max_depth
        return depth is not None and len([p for p in relative.split("/") if p]) > depth

    def _cut(self, relative: str) -> str:
        """The name as a server that cuts names at `cut_names_at` stores it."""
        mark = self.quirks.cut_names_at
        folder, _, name = relative.rpartition("/")
        if not mark or mark not in name:
            return relative
        name = name.split(mark, 1)[0]
        return f"{folder}/{name}" if folder else name

    def _refused(
        self, environ: dict[str, Any], start_response: StartResponse, method: str, relative: str
    ) -> list[bytes] | None:
        """400 for a name with a refused character (PUT, MKCOL, or a MOVE's destination)."""
        refused = self.quirks.refused_characters
        if not refused or method not in ("PUT", "MKCOL", "MOVE"):
            return None
        name = relative
        if method == "MOVE":
            name = unquote(urlsplit(environ.get("HTTP_DESTINATION", "")).path)
        if not any(c in name.rpartition("/")[2] for c in refused):
            return None
        left = int(environ.get("CONTENT_LENGTH") or 0)
        while left > 0:
            block = environ["wsgi.input"].read(min(left, 1 << 20))
            if not block:
                break
            left -= len(block)
        return _sabre_error(start_response, "400 Bad Request", INVALID_CHARACTER)

    def _to_trash(self, start_response: StartResponse, relative: str) -> list[bytes] | None:
        """DELETE of a file with a trash bin: it moves there (NextCloud's files_trashbin)."""
        source = self.files_dir / relative
        if not source.is_file():
            return None
        stamp = int(time.time() * 1000)
        name = f"{source.name}.d{stamp}"
        source.replace(self.trash_dir / name)
        with self._lock:
            self.trashed[name] = relative
            self.checksums.pop(relative, None)
        return _reply(start_response, "204 No Content")

    def _trash(
        self, environ: dict[str, Any], start_response: StartResponse, rest: str
    ) -> Iterable[bytes]:
        """The trash bin API: PROPFIND lists (nc:trashbin-*), DELETE purges an item."""
        method = environ["REQUEST_METHOD"]
        name = rest.strip("/")
        if method == "DELETE":
            target = self.trash_dir / name if name else None
            if target is not None and not target.exists():
                return _sabre_error(start_response, "404 Not Found", "not found")
            for item in [target] if target else list(self.trash_dir.iterdir()):
                if item.is_dir():
                    shutil.rmtree(item)
                else:
                    item.unlink()
                with self._lock:
                    self.trashed.pop(item.name, None)
            return _reply(start_response, "204 No Content")
        if method != "PROPFIND" or name:
            return _sabre_error(start_response, "405 Method Not Allowed", "Not allowed")
        responses = [
            f"<d:response><d:href>{self.trash_prefix}/</d:href><d:propstat><d:prop>"
            f"<d:resourcetype><d:collection/></d:resourcetype></d:prop>{_OK}</d:propstat>"
            "</d:response>"
        ]
        for item in sorted(self.trash_dir.iterdir()):
            original = self.trashed.get(item.name, item.name)
            filename = original.rpartition("/")[2]
            responses.append(
                f"<d:response><d:href>{self.trash_prefix}/{quote(item.name)}</d:href>"
                "<d:propstat><d:prop><d:resourcetype/>"
                f"<d:getcontentlength>{_size_of(item)}</d:getcontentlength>"
                f"<nc:trashbin-filename>{escape(filename)}</nc:trashbin-filename>"
                "<nc:trashbin-original-location>"
                f"{escape(original)}</nc:trashbin-original-location>"
                f"</d:prop>{_OK}</d:propstat></d:response>"
            )
        body = (
            '<?xml version="1.0" encoding="utf-8"?><d:multistatus xmlns:d="DAV:" '
            'xmlns:nc="http://nextcloud.org/ns">' + "".join(responses) + "</d:multistatus>"
        ).encode()
        xml = [("Content-Type", "application/xml; charset=utf-8")]
        return _reply(start_response, "207 Multi-Status", body, xml)

    # -- files tree ------------------------------------------------------------------

    def _put(
        self, environ: dict[str, Any], start_response: StartResponse, relative: str
    ) -> Iterable[bytes]:
        mtime_header = environ.get("HTTP_X_OC_MTIME")
        if mtime_header is not None:
            with self._lock:
                self.mtime_headers.append(mtime_header)
        full = self._over_quota(environ, start_response, int(environ.get("CONTENT_LENGTH") or 0))
        if full is not None:
            return full
        cut = self._cut(relative)
        if cut != relative:
            relative = cut
            environ["PATH_INFO"] = f"{self.files_prefix}/{cut}".encode().decode("latin-1")
        hashing = _HashingInput(environ["wsgi.input"])
        environ["wsgi.input"] = hashing
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        body = b"".join(self.inner(environ, capture))
        status: str = captured["status"]
        headers: list[tuple[str, str]] = list(captured["headers"])
        if not status.startswith(("201", "204")):
            start_response(status, headers)
            return [body]
        target = self.files_dir / relative
        try:
            mtime = _valid_mtime(mtime_header)
        except ValueError as exc:  # applied after the write, as File::put does
            return _sabre_error(start_response, "500 Internal Server Error", str(exc))
        self._after_write(environ, target, relative, mtime, hashing.digest.hexdigest(), headers)
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        start_response(status, [*headers, ("Content-Length", str(len(body)))])
        return [body]

    def _after_write(
        self,
        environ: dict[str, Any],
        target: Path,
        relative: str,
        mtime: int | None,
        sha256: str,
        headers: list[tuple[str, str]],
    ) -> None:
        if mtime is not None:
            os.utime(target, (mtime, mtime))
            headers.append(("X-OC-MTime", "accepted"))
        checksum = (environ.get("HTTP_OC_CHECKSUM") or "").strip()
        with self._lock:
            if checksum:
                self.checksums[relative] = checksum
            else:
                self.checksums.pop(relative, None)  # a PUT without it clears the old one
        if (environ.get("HTTP_X_HASH") or "").lower() in ("sha256", "all"):
            headers.append(("X-Hash-SHA256", sha256))
        headers.append(("OC-FileId", _file_id(target)))

    def _propfind(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """WsgiDAV's listing, plus `oc:checksums` for files with a stored checksum (§6)."""
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        body = b"".join(self.inner(environ, capture))
        status: str = captured["status"]
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
        if status.startswith("207"):
            body = self._add_checksums(body)
        return _reply(start_response, status, body, headers)

    def _add_checksums(self, body: bytes) -> bytes:
        root = ET.fromstring(body)
        for response in root.iter(f"{_D}response"):
            href = unquote(urlsplit(response.findtext(f"{_D}href") or "").path)
            checksum = self.checksums.get(href[len(self.files_prefix) + 1 :])
            for propstat in response.findall(f"{_D}propstat"):
                prop = propstat.find(f"{_D}prop")
                if prop is None:
                    continue
                asked = prop.find(f"{_OC}checksums")
                if asked is not None and checksum:
                    prop.remove(asked)
                found = " 200 " in f" {propstat.findtext(f'{_D}status') or ''} "
                is_folder = prop.find(f"{_D}resourcetype/{_D}collection") is not None
                if found and is_folder and self.quirks.quota_bytes is not None:
                    for tag in ("quota-available-bytes", "quota-used-bytes"):
                        for old in prop.findall(f"{_D}{tag}"):
                            prop.remove(old)
                    used = self.used_bytes()
                    free = max(0, self.quirks.quota_bytes - used)
                    ET.SubElement(prop, f"{_D}quota-available-bytes").text = str(free)
                    ET.SubElement(prop, f"{_D}quota-used-bytes").text = str(used)
                if found and checksum:
                    values = ET.SubElement(prop, f"{_OC}checksums")
                    ET.SubElement(values, f"{_OC}checksum").text = checksum
        return ET.tostring(root, xml_declaration=True, encoding="utf-8")

    def _move(
        self, environ: dict[str, Any], start_response: StartResponse, relative: str
    ) -> Iterable[bytes]:
        """A rename keeps the file's metadata (the stored checksum moves with it)."""
        destination = unquote(urlsplit(environ.get("HTTP_DESTINATION", "")).path)
        if destination.startswith(self.files_prefix + "/"):
            cut = self._cut(destination[len(self.files_prefix) + 1 :])
            destination = f"{self.files_prefix}/{cut}"
            environ["HTTP_DESTINATION"] = quote(destination)
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        body = b"".join(self.inner(environ, capture))  # WsgiDAV answers lazily
        moved = str(captured.get("status", "")).startswith(("201", "204"))
        if moved and destination.startswith(self.files_prefix + "/"):
            with self._lock:
                checksum = self.checksums.pop(relative, None)
                if checksum:
                    self.checksums[destination[len(self.files_prefix) + 1 :]] = checksum
        if moved and self.quirks.proxy_504_on_move:
            return _proxy_timeout(start_response)
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
        return _reply(start_response, captured["status"], body, headers)

    def _recalculate(self, start_response: StartResponse, relative: str) -> Iterable[bytes]:
        target = self.files_dir / relative
        if not target.is_file():
            return _sabre_error(start_response, "404 Not Found", "File not found")
        digest = hashlib.sha256()
        with target.open("rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
        value = f"SHA256:{digest.hexdigest()}"
        with self._lock:
            self.checksums[relative] = value
        return _reply(start_response, "204 No Content", headers=[("OC-Checksum", value)])

    # -- chunked upload --------------------------------------------------------------

    def _uploads(
        self, environ: dict[str, Any], start_response: StartResponse, rest: str
    ) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        parts = [p for p in rest.split("/") if p]
        if not parts:
            return _sabre_error(start_response, "405 Method Not Allowed", "Not allowed")
        folder = self.uploads_dir / parts[0]
        if len(parts) == 1:
            if method == "MKCOL":
                if folder.exists():
                    return _sabre_error(start_response, "405 Method Not Allowed", "exists")
                folder.mkdir()
                return _reply(start_response, "201 Created")
            if method == "PROPFIND":
                return self._list_upload(start_response, parts[0], folder)
            if method == "DELETE":
                if not folder.exists():
                    return _sabre_error(start_response, "404 Not Found", "not found")
                shutil.rmtree(folder)
                return _reply(start_response, "204 No Content")
            return _sabre_error(start_response, "405 Method Not Allowed", "Not allowed")
        name = parts[1]
        if method == "MOVE" and name == ".file":
            return self._assemble(environ, start_response, folder)
        if method == "PUT":
            return self._put_chunk(environ, start_response, folder, name)
        if method == "HEAD" and self.quirks.chunk_head and (folder / name).is_file():
            size = (folder / name).stat().st_size
            start_response("200 OK", [("Content-Length", str(size))])
            return [b""]
        if method == "DELETE":
            chunk = folder / name
            if self.quirks.chunk_delete_refused:
                return _sabre_error(start_response, "400 Bad Request", "Deleting a chunk fails")
            if not chunk.exists():
                return _sabre_error(start_response, "404 Not Found", "not found")
            chunk.unlink()
            return _reply(start_response, "204 No Content")
        return _sabre_error(start_response, "405 Method Not Allowed", "Not allowed")

    def _put_chunk(
        self, environ: dict[str, Any], start_response: StartResponse, folder: Path, name: str
    ) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        stream = environ["wsgi.input"]
        if not folder.is_dir():
            while length > 0:
                length -= len(stream.read(min(length, 1 << 20)) or b"x" * length)
            return _sabre_error(
                start_response,
                "409 Conflict",
                MISSING_PARENT,
            )
        full = self._over_quota(environ, start_response, length)
        if full is not None:
            return full
        if not name.isdigit() or not 1 <= int(name) <= 10000:
            return _sabre_error(
                start_response,
                "400 Bad Request",
                BAD_CHUNK_NAME,
            )
        chunk = folder / name
        existed = chunk.exists()
        part = folder / f".{name}.ocTransferId{threading.get_ident()}.part"
        received = 0
        with part.open("wb") as handle:
            left = length
            while left > 0:
                block = stream.read(min(left, 1 << 20))
                if not block:
                    break
                handle.write(block)
                left -= len(block)
                received += len(block)
        if received != length:
            part.unlink()
            return _sabre_error(
                start_response,
                "400 Bad Request",
                f"Expected filesize of {length} bytes but read {received}",
            )
        part.replace(chunk)
        return _reply(start_response, "204 No Content" if existed else "201 Created")

    def _list_upload(
        self, start_response: StartResponse, upload_id: str, folder: Path
    ) -> Iterable[bytes]:
        if not folder.is_dir():
            return _sabre_error(start_response, "404 Not Found", "not found")
        base = f"{self.uploads_prefix}/{quote(upload_id)}"

        def entry(href: str, props: str) -> str:
            return (
                f"<d:response><d:href>{href}</d:href><d:propstat><d:prop>{props}</d:prop>"
                f"{_OK}</d:propstat></d:response>"
            )

        responses = [
            entry(f"{base}/", "<d:resourcetype><d:collection/></d:resourcetype>"),
            entry(f"{base}/.file", "<d:resourcetype/>"),
        ]
        for chunk in sorted(p for p in folder.iterdir() if not p.name.startswith(".")):
            info = chunk.stat()
            modified = formatdate(info.st_mtime, usegmt=True)
            size = f"<d:getcontentlength>{info.st_size}</d:getcontentlength>"
            responses.append(
                entry(
                    f"{base}/{quote(chunk.name)}",
                    f"<d:resourcetype/>{size if self.quirks.chunk_sizes_listed else ''}"
                    f"<d:getlastmodified>{modified}</d:getlastmodified>",
                )
            )
        body = (
            '<?xml version="1.0" encoding="utf-8"?><d:multistatus xmlns:d="DAV:">'
            + "".join(responses)
            + "</d:multistatus>"
        ).encode()
        xml = [("Content-Type", "application/xml; charset=utf-8")]
        return _reply(start_response, "207 Multi-Status", body, xml)

    def _assemble(
        self, environ: dict[str, Any], start_response: StartResponse, folder: Path
    ) -> Iterable[bytes]:
        destination = unquote(urlsplit(environ.get("HTTP_DESTINATION", "")).path)
        if not destination.startswith(self.files_prefix + "/"):
            return _sabre_error(start_response, "400 Bad Request", "Bad Destination")
        relative = self._cut(destination[len(self.files_prefix) + 1 :])
        target = self.files_dir / relative
        overwrite = environ.get("HTTP_OVERWRITE", "T").upper()
        if not folder.is_dir():
            return _sabre_error(start_response, "404 Not Found", "Upload not found")
        if not target.parent.is_dir():
            return _sabre_error(start_response, "409 Conflict", "The destination node is not found")
        if target.is_dir():
            return _sabre_error(
                start_response,
                "400 Bad Request",
                f"The given destination {relative} is a directory.",
            )
        existed = target.exists()
        if existed and overwrite == "F":
            return _sabre_error(
                start_response,
                "412 Precondition Failed",
                DESTINATION_EXISTS,
            )
        chunks = sorted(
            (p for p in folder.iterdir() if p.name.isdigit()), key=lambda p: int(p.name)
        )
        total = sum(p.stat().st_size for p in chunks)
        expected = environ.get("HTTP_OC_TOTAL_LENGTH")
        if expected is not None and int(expected) != total:
            return _sabre_error(
                start_response,
                "400 Bad Request",
                f"Chunks on server do not sum up to {expected} but to {total} bytes",
            )
        try:
            mtime = _valid_mtime(environ.get("HTTP_X_OC_MTIME"))
        except ValueError as exc:
            return _sabre_error(start_response, "500 Internal Server Error", str(exc))
        digest = hashlib.sha256()
        part = target.parent / f".{target.name}.ocTransferId{threading.get_ident()}.part"
        with part.open("wb") as out:
            for chunk in chunks:
                with chunk.open("rb") as handle:
                    while block := handle.read(1 << 20):
                        digest.update(block)
                        out.write(block)
        part.replace(target)
        shutil.rmtree(folder)
        headers: list[tuple[str, str]] = [("ETag", f'"{target.stat().st_mtime_ns}-{total}"')]
        self._after_write(environ, target, relative, mtime, digest.hexdigest(), headers)
        if self.quirks.proxy_504_on_move:
            return _proxy_timeout(start_response)
        return _reply(
            start_response, "204 No Content" if existed else "201 Created", headers=headers
        )
