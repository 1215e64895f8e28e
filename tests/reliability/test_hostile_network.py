"""No-token attacks on the connection: endless request lines and headers, slowloris, fd exhaustion.

Each attack runs against `photo-relay serve` in a subprocess on 127.0.0.1 while a probe asks
/healthz and makes a small authenticated upload every 50 ms on fresh connections; the
service must answer the attacker with the status HTTP defines (414, 431, 408, 503), keep
answering the probe within 1 s, and stay under 300 MB resident (read from /proc).
"""

from __future__ import annotations

import hashlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import add_device
from tests.reliability.harness import Tally
from tests.reliability.hostile import (
    HealthProbe,
    LimitedService,
    memory_mb,
    open_files_limit,
    raw_request,
    read_response,
    status_of,
    upload_with,
)
from tests.support.servers import ServiceProcess, find_free_port, wait_for

pytestmark = pytest.mark.reliability

RSS_LIMIT_MB = 300
ANSWER_WITHIN_S = 1.0
HEADER_TIMEOUT_S = 1.0


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[ServiceProcess, str]]:
    data_dir = tmp_path / "data"
    token = add_device(data_dir, "phone")
    process = ServiceProcess(
        data_dir,
        find_free_port(),
        {
            "PHOTO_RELAY_TARGET_FOLDER": str(tmp_path / "library"),
            "PHOTO_RELAY_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT_S),
        },
    )
    with process.running():
        yield process, token


def pid_of(service: ServiceProcess) -> int:
    assert service.process is not None
    return service.process.pid


def assert_unharmed(probe: HealthProbe, service: ServiceProcess, tally: Tally) -> None:
    assert probe.answers > 0, "the probe never got an answer"
    assert not probe.failures, probe.failures[:5]
    assert probe.slowest < ANSWER_WITHIN_S, f"slowest answer {probe.slowest:.2f}s"
    peak = memory_mb(pid_of(service), "VmHWM")
    assert peak < RSS_LIMIT_MB, f"peak RSS {peak:.0f} MB"
    tally.add("health_and_upload_slowest_ms", round(probe.slowest * 1000))
    tally.add("rss_peak_mb", round(peak))
    tally.report()


def test_endless_request_line_is_refused_with_414(service: tuple[ServiceProcess, str]) -> None:
    """A URL that never ends gets 414 after a few KiB; memory and other clients are unharmed."""
    process, token = service
    tally = Tally("hostile-endless-url")
    with HealthProbe(process.base_url, upload_with(token)) as probe:
        replies = [
            raw_request(process.port, b"GET /", stream=b"a" * 65536, total=64 << 20)
            for _ in range(4)
        ]
    assert [status_of(r) for r in replies] == [414] * 4
    assert b'"uri_too_long"' in replies[0]
    assert_unharmed(probe, process, tally)


def test_endless_header_is_refused_with_431(service: tuple[ServiceProcess, str]) -> None:
    """One header line that never ends (64 MiB offered) gets 431 after 40 KiB or so."""
    process, token = service
    tally = Tally("hostile-endless-header")
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Long: "
    with HealthProbe(process.base_url, upload_with(token)) as probe:
        replies = [
            raw_request(process.port, head, stream=b"a" * 65536, total=64 << 20) for _ in range(4)
        ]
    assert [status_of(r) for r in replies] == [431] * 4
    assert_unharmed(probe, process, tally)


def test_an_endless_head_after_a_kept_alive_request_is_refused_too(
    service: tuple[ServiceProcess, str],
) -> None:
    """The limits hold for every request on a connection, not only its first one."""
    process, _ = service
    with socket.create_connection(("127.0.0.1", process.port), timeout=30) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock) == 200
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Long: ")
        try:
            for _ in range(1024):
                sock.sendall(b"a" * 65536)
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert status_of(sock.recv(65536)) == 431


def test_an_upload_body_in_the_same_reads_as_its_head_is_not_counted_as_head(
    service: tuple[ServiceProcess, str],
) -> None:
    """One kept-alive connection, whole requests in one write (150 kB and 1 MiB): all 201."""
    process, token = service
    with socket.create_connection(("127.0.0.1", process.port), timeout=30) as sock:
        for seed, size in [(b"1", 150_000), (b"2", 150_000), (b"3", 1 << 20), (b"4", 150_000)]:
            data = seed * size
            sock.sendall(
                f"PUT /v1/blobs/{hashlib.sha256(data).hexdigest()} HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: Bearer {token}\r\nContent-Length: {len(data)}\r\n\r\n".encode()
                + data
            )
            assert read_response(sock) == 201


def test_too_many_headers_are_refused_with_431(service: tuple[ServiceProcess, str]) -> None:
    """More than 100 headers, each small, is refused as a whole (431), not passed on."""
    process, _ = service
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(150))
    reply = raw_request(process.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
    assert status_of(reply) == 431
    fine = b"".join(b"X-H%d: v\r\n" % i for i in range(50))
    assert (
        status_of(
            raw_request(process.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + fine + b"\r\n")
        )
        == 200
    )


def test_headers_that_never_finish_get_408(service: tuple[ServiceProcess, str]) -> None:
    """Slowloris: 300 connections dripping headers are answered 408 at the deadline and closed."""
    process, token = service
    tally = Tally("hostile-slowloris")
    sockets = [socket.create_connection(("127.0.0.1", process.port)) for _ in range(300)]
    try:
        with HealthProbe(process.base_url, upload_with(token)) as probe:
            for sock in sockets:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            started = time.monotonic()
            while time.monotonic() - started < HEADER_TIMEOUT_S / 2:
                for sock in sockets:
                    sock.sendall(b"X-Drip: 1\r\n")  # never the blank line that ends them
                time.sleep(0.1)
            for sock in sockets:
                sock.settimeout(HEADER_TIMEOUT_S + 10)
            replies = [sock.recv(4096) for sock in sockets]
        assert {status_of(r) for r in replies} == {408}
        assert all(sock.recv(1) == b"" for sock in sockets)  # and closed
    finally:
        for sock in sockets:
            sock.close()
    tally.add("connections", len(sockets))
    assert_unharmed(probe, process, tally)


def test_connections_beyond_the_fd_limit_do_not_lock_out_clients(tmp_path: Path) -> None:
    """Under a 256-file limit, 600 idle connections: /healthz and uploads still get in."""
    tally = Tally("hostile-fd-exhaustion")
    data_dir = tmp_path / "data"
    token = add_device(data_dir, "phone")
    process = LimitedService(
        data_dir,
        find_free_port(),
        {"PHOTO_RELAY_TARGET_FOLDER": str(tmp_path / "library")},
        open_files=256,
    )
    sockets: list[socket.socket] = []
    with process.running():
        try:
            with HealthProbe(process.base_url, upload_with(token)) as probe:
                for _ in range(600):
                    sockets.append(socket.create_connection(("127.0.0.1", process.port)))
                    sockets[-1].sendall(b"GET / HTTP/1.1\r\n")
                wait_for(lambda: probe.answers >= 10, timeout=20, what="ten probe answers")
            # The oldest idle ones were closed (408) to make room; the service stayed below
            # its limit, so it never failed an accept or a spool file.
            evicted = 0
            for sock in sockets[:100]:
                sock.settimeout(10)
                evicted += status_of(sock.recv(4096)) == 408
            assert evicted == 100
        finally:
            for sock in sockets:
                sock.close()
        assert "Too many open files" not in process.log()
        tally.add("connections", len(sockets))
        assert_unharmed(probe, process, tally)


def test_serve_raises_its_soft_open_files_limit_to_the_hard_one(tmp_path: Path) -> None:
    """Started with 256 soft / 4,096 hard (a shell's ulimit), the service runs with 4,096."""
    process = LimitedService(
        tmp_path / "data",
        find_free_port(),
        {"PHOTO_RELAY_TARGET_FOLDER": str(tmp_path / "library")},
        open_files=256,
        hard_limit=4096,
    )
    with process.running():
        assert open_files_limit(pid_of(process)) == 4096
