"""A lean HTTP/1.1 client for the benchmarks: keep-alive, bodies sent with sendfile.

The bodies come straight from the page cache into the socket (`socket.sendfile`), so the
client costs almost no CPU and the server is what is measured. A body is a list of parts:
bytes (multipart framing), a file, or an iterator of bytes (a generated stream).
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Body", "Connection", "Response", "multipart_body"]

Body = Sequence["bytes | Path | GeneratedStream"]


@dataclass(frozen=True)
class GeneratedStream:
    """Bytes made on the fly (no file on disk); `length` must be exact."""

    chunks: Iterable[bytes]
    length: int


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes


def body_length(body: Body) -> int:
    total = 0
    for part in body:
        if isinstance(part, bytes):
            total += len(part)
        elif isinstance(part, Path):
            total += part.stat().st_size
        else:
            total += part.length
    return total


def multipart_body(path: Path, boundary: str = "photo-relay-bench-boundary") -> tuple[Body, str]:
    """A multipart/form-data body with one file part, as a Shortcut sends it."""
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    return [head, path, tail], f"multipart/form-data; boundary={boundary}"


class Connection:
    """One keep-alive connection to 127.0.0.1:port."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buffer = b""

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: Body = ()
    ) -> Response:
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        lines.append(f"Content-Length: {body_length(body)}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        for part in body:
            if isinstance(part, bytes):
                self.sock.sendall(part)
            elif isinstance(part, Path):
                with part.open("rb") as handle:
                    self.sock.sendfile(handle)
            else:
                for chunk in part.chunks:
                    self.sock.sendall(chunk)
        return self._read_response()

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self._buffer:
            self._fill()
        head, _, self._buffer = self._buffer.partition(marker)
        return head

    def _read_exact(self, size: int) -> bytes:
        while len(self._buffer) < size:
            self._fill()
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("the server closed the connection mid-response")
        self._buffer += data

    def _read_response(self) -> Response:
        head = self._read_until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        status = int(head[0].split()[1])
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = self._read_exact(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = b"".join(self._chunks())
        else:
            body = b""
        return Response(status, body)

    def _chunks(self) -> Iterator[bytes]:
        while True:
            size = int(self._read_until(b"\r\n").split(b";")[0], 16)
            if size == 0:
                self._read_until(b"\r\n")
                return
            yield self._read_exact(size)
            self._read_until(b"\r\n")
