"""Upload bodies read straight from the socket (app/socket_body.py) and through ASGI alike.

`serve`'s protocol hands an authenticated upload's body to a reader thread; stock uvicorn,
a busy pool or a request already answered leave it to ASGI. Both ways must store the same
bytes, refuse the same things, leave nothing behind when a body stalls or is cut, and keep
the connection usable for the next request (a fresh parser after a body the old one never
saw). Raw sockets on 127.0.0.1, so keep-alive, pipelining and `Expect: 100-continue` are
under the test's control.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from itertools import count
from pathlib import Path

import httpx
import pytest

from app.socket_body import BodyThreads
from tests.conftest import add_device, make_settings
from tests.support.samples import jpeg
from tests.support.servers import ThreadedService, wait_for

BOTH_WAYS = pytest.mark.parametrize("socket_bodies", [True, False], ids=["socket", "asgi"])


class Served:
    def __init__(self, server: ThreadedService, token: str) -> None:
        self.server = server
        self.token = token
        self.port = server.settings.port
        self.spool_tmp = server.settings.data_dir / "spool" / "tmp"

    @property
    def threads(self) -> BodyThreads:
        assert self.server.body_threads is not None
        return self.server.body_threads

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=30)

    def put_head(self, body: bytes, *, extra: str = "", sha256: str | None = None) -> bytes:
        digest = sha256 or hashlib.sha256(body).hexdigest()
        return (
            f"PUT /v1/blobs/{digest} HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {self.token}\r\nContent-Length: {len(body)}\r\n"
            f'Content-Disposition: attachment; filename="IMG_{digest[:6]}.JPG"\r\n{extra}\r\n'
        ).encode()

    def item(self, sha256: str) -> int:
        with httpx.Client(base_url=self.server.base_url, timeout=30) as client:
            reply = client.get(
                f"/v1/items/{sha256}", headers={"Authorization": f"Bearer {self.token}"}
            )
        return reply.status_code

    def temp_files(self) -> list[Path]:
        return list(self.spool_tmp.iterdir()) if self.spool_tmp.exists() else []


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    numbers = count()
    with ExitStack() as stack:

        def start(
            *, socket_bodies: bool = True, body_threads: int = 16, **overrides: object
        ) -> Served:
            settings = make_settings(tmp_path / f"s{next(numbers)}", **overrides)
            token = add_device(settings.data_dir, "phone")
            server = ThreadedService(
                settings, socket_bodies=socket_bodies, body_threads=body_threads
            )
            server.start()
            stack.callback(server.stop)
            return Served(server, token)

        yield start


def read_reply(sock: socket.socket, pending: bytearray) -> tuple[int, dict[str, object] | None]:
    """One whole response from `sock`; `pending` keeps what arrived beyond it."""
    while b"\r\n\r\n" not in pending:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before a reply")
        pending += chunk
    head, _, rest = bytes(pending).partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed inside a reply")
        rest += chunk
    pending[:] = rest[length:]
    body = json.loads(rest[:length]) if length and status != 100 else None
    return status, body


def photo(seed: int, size: int) -> bytes:
    return jpeg(seed=seed, padding=size)


@BOTH_WAYS
def test_bodies_of_several_sizes_on_one_connection(
    serve: Callable[..., Served], socket_bodies: bool
) -> None:
    """A large body, a tiny one and a GET on one keep-alive connection, each answered right."""
    served = serve(socket_bodies=socket_bodies)
    large, tiny = photo(1, 3 * 1024 * 1024 + 17), photo(2, 10)
    with served.connect() as sock:
        pending = bytearray()
        for body in (large, tiny):
            sock.sendall(served.put_head(body) + body)
            status, receipt = read_reply(sock, pending)
            assert status == 201, receipt
            assert receipt is not None and receipt["sha256"] == hashlib.sha256(body).hexdigest()
            assert receipt["size"] == len(body)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_reply(sock, pending)[0] == 200
    if socket_bodies:
        assert served.threads.bodies == 2
    stored = served.server.settings.data_dir / "spool" / "objects"
    digest = hashlib.sha256(large).hexdigest()
    assert (stored / digest[:2] / digest).read_bytes() == large


@BOTH_WAYS
def test_a_request_pipelined_behind_a_body_is_answered(
    serve: Callable[..., Served], socket_bodies: bool
) -> None:
    """Bytes after the body belong to the next request, not to the file."""
    served = serve(socket_bodies=socket_bodies)
    body = photo(3, 2 * 1024 * 1024)
    second = photo(4, 1000)
    with served.connect() as sock:
        sock.sendall(served.put_head(body) + body + served.put_head(second) + second)
        pending = bytearray()
        first_status, first = read_reply(sock, pending)
        second_status, other = read_reply(sock, pending)
    assert (first_status, second_status) == (201, 201)
    assert first is not None and other is not None
    assert (first["size"], other["size"]) == (len(body), len(second))


@BOTH_WAYS
def test_expect_100_continue_is_answered_before_the_body(
    serve: Callable[..., Served], socket_bodies: bool
) -> None:
    served = serve(socket_bodies=socket_bodies)
    body = photo(5, 1024 * 1024)
    with served.connect() as sock:
        sock.sendall(served.put_head(body, extra="Expect: 100-continue\r\n"))
        pending = bytearray()
        assert read_reply(sock, pending)[0] == 100
        sock.sendall(body)
        status, receipt = read_reply(sock, pending)
    assert status == 201, receipt


@BOTH_WAYS
def test_a_wrong_body_is_refused_and_the_connection_goes_on(
    serve: Callable[..., Served], socket_bodies: bool
) -> None:
    served = serve(socket_bodies=socket_bodies)
    body = photo(6, 2 * 1024 * 1024)
    claimed = hashlib.sha256(b"something else").hexdigest()
    with served.connect() as sock:
        pending = bytearray()
        sock.sendall(served.put_head(body, sha256=claimed) + body)
        status, error = read_reply(sock, pending)
        assert status == 422 and error is not None
        assert error["error"]["code"] == "hash_mismatch"  # type: ignore[index]
        sock.sendall(served.put_head(body) + body)
        assert read_reply(sock, pending)[0] == 201
    assert served.item(claimed) == 404
    assert served.temp_files() == []


# 12 MiB: a body that large is received by a second thread while the first hashes and writes.
SIZES = pytest.mark.parametrize("size", [2 * 1024 * 1024, 12 * 1024 * 1024], ids=["2MiB", "12MiB"])


@BOTH_WAYS
@SIZES
def test_a_stalled_body_is_refused_and_leaves_nothing(
    serve: Callable[..., Served], socket_bodies: bool, size: int
) -> None:
    served = serve(socket_bodies=socket_bodies, upload_idle_timeout_seconds=0.5)
    body = photo(7, size)
    with served.connect() as sock:
        sock.sendall(served.put_head(body) + body[: len(body) // 2])
        pending = bytearray()
        status, error = read_reply(sock, pending)
        assert status == 408, error
        # The rest of that body can never be told from a next request: the connection closes.
        assert sock.recv(65536) == b""
    wait_for(lambda: served.temp_files() == [], what="the temp file to be removed")
    assert served.item(hashlib.sha256(body).hexdigest()) == 404
    if socket_bodies:
        wait_for(lambda: served.threads.busy == 0, what="the reader thread to be free")


@BOTH_WAYS
@SIZES
def test_a_cut_body_leaves_nothing(
    serve: Callable[..., Served], socket_bodies: bool, size: int
) -> None:
    served = serve(socket_bodies=socket_bodies)
    body = photo(8, size)
    with served.connect() as sock:
        sock.sendall(served.put_head(body) + body[: 1024 * 1024 + 5])
        if socket_bodies:
            wait_for(lambda: served.threads.busy >= 1, what="the body to reach its reader")
        else:
            wait_for(served.temp_files, what="the body to reach the spool")
    wait_for(lambda: served.temp_files() == [], what="the temp file to be removed")
    assert served.item(hashlib.sha256(body).hexdigest()) == 404
    if socket_bodies:
        wait_for(lambda: served.threads.busy == 0, what="the reader thread to be free")
    # The service goes on taking uploads.
    with served.connect() as sock:
        sock.sendall(served.put_head(body) + body)
        assert read_reply(sock, bytearray())[0] == 201


@BOTH_WAYS
def test_forms_from_the_socket(serve: Callable[..., Served], socket_bodies: bool) -> None:
    """A form of two files with their fields, as big as a photo, arrives whole."""
    served = serve(socket_bodies=socket_bodies)
    files = [photo(9, 2 * 1024 * 1024 + 3), photo(10, 100)]
    with httpx.Client(base_url=served.server.base_url, timeout=60) as client:
        reply = client.post(
            "/v1/uploads",
            headers={"Authorization": f"Bearer {served.token}"},
            files=[("file", (f"IMG_{i}.JPG", data, "image/jpeg")) for i, data in enumerate(files)],
            data={"name": ["first.jpg", "second.jpg"]},
        )
    assert reply.status_code == 201, reply.text
    items = reply.json()["items"]
    assert [i["sha256"] for i in items] == [hashlib.sha256(d).hexdigest() for d in files]
    assert [i["original_name"] for i in items] == ["first.jpg", "second.jpg"]
    if socket_bodies:
        assert served.threads.bodies == 1


def test_when_every_reader_is_busy_the_body_comes_through_asgi(
    serve: Callable[..., Served],
) -> None:
    """One reader thread, held by a slow body: a second upload is not kept waiting for it."""
    served = serve(body_threads=1, upload_idle_timeout_seconds=30)
    slow, quick = photo(11, 2 * 1024 * 1024), photo(12, 1024 * 1024)
    with served.connect() as holder:
        holder.sendall(served.put_head(slow) + slow[:1000])
        wait_for(lambda: served.threads.busy == 1, what="the slow body to hold the reader")
        with served.connect() as sock:
            sock.sendall(served.put_head(quick) + quick)
            assert read_reply(sock, bytearray())[0] == 201
        assert served.threads.bodies == 1  # the quick one came through ASGI
        holder.sendall(slow[1000:])
        assert read_reply(holder, bytearray())[0] == 201


def test_random_bytes_pass_unchanged(serve: Callable[..., Served]) -> None:
    """Not a photo, odd sizes around the reader's buffer: stored byte for byte."""
    served = serve()
    with served.connect() as sock:
        pending = bytearray()
        mib = 1024 * 1024
        for size in (mib - 1, mib, mib + 1, 5 * mib + 333, 8 * mib, 9 * mib + 1, 16 * mib):
            body = os.urandom(size)
            sock.sendall(served.put_head(body) + body)
            status, receipt = read_reply(sock, pending)
            assert status == 201 and receipt is not None and receipt["size"] == size
