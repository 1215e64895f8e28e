"""The targets' HTTP/1.1 transport against a real TCP server that answers as scripted.

WsgiDAV (cheroot) always answers with a Content-Length and keeps connections; these
replies are the other shapes servers and proxies send: chunked bodies, `Connection:
close`, an answer before the body was read, a reply cut short, no answer at all, and
TLS with a certificate that is trusted or not.
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from app.targets.client import open_client

Answer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[bool]]


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """The request's head and its whole body (by Content-Length)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head, await reader.readexactly(length)


class Scripted:
    """A TCP server answering each request with `answer`; counts connections and requests."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.connections = 0
        self.requests = 0
        self.port = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while await self.answer(reader, writer):
                self.requests += 1
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client went away
        finally:
            writer.close()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[str]:
        server = await asyncio.start_server(self.serve, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        async with server:
            yield f"http://127.0.0.1:{self.port}"


def client(timeout: float = 5.0) -> httpx.AsyncClient:
    return open_client(login="alice", password=SecretStr("pw"), timeout=timeout)


async def sized(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    _, body = await read_request(reader)
    reply = b"got %d" % len(body)
    writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: %d\r\n\r\n%b" % (len(reply), reply))
    await writer.drain()
    return True


def test_one_connection_carries_every_request() -> None:
    """Keep-alive: ten requests, one after the other, take one connection."""

    async def scenario() -> Scripted:
        server = Scripted(sized)
        async with server.running() as url, client() as http:
            for number in range(10):
                response = await http.put(f"{url}/f{number}", content=b"x" * number)
                assert response.status_code == 201
                assert response.content == b"got %d" % number
        return server

    server = asyncio.run(scenario())
    assert (server.connections, server.requests) == (1, 10)


def test_a_streamed_body_goes_out_whole_with_its_length() -> None:
    """A body given as pieces is sent as they come, under the Content-Length given."""

    async def pieces() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b"y" * 300_000

    async def scenario() -> bytes:
        server = Scripted(sized)
        async with server.running() as url, client() as http:
            headers = {"Content-Length": "900000"}
            response = await http.put(f"{url}/big", content=pieces(), headers=headers)
            return response.content

    assert asyncio.run(scenario()) == b"got 900000"


async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    await read_request(reader)
    writer.write(
        b"HTTP/1.1 207 Multi-Status\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\n"
    )
    await writer.drain()
    return True


def test_a_chunked_reply_is_read_whole_and_the_connection_kept() -> None:
    """A chunked body (with an extension and a trailer) arrives whole; the next request
    reuses the connection."""

    async def scenario() -> tuple[list[bytes], Scripted]:
        server = Scripted(chunked)
        async with server.running() as url, client() as http:
            bodies = [(await http.request("PROPFIND", f"{url}/")).content for _ in range(2)]
        return bodies, server

    bodies, server = asyncio.run(scenario())
    assert bodies == [b"hello, world"] * 2
    assert server.connections == 1


async def closing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    await read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end")
    await writer.drain()
    return False


def test_a_reply_framed_by_close_is_read_to_the_end_and_not_reused() -> None:
    """No length, `Connection: close`: the body ends with the connection; a new one follows."""

    async def scenario() -> tuple[list[bytes], Scripted]:
        server = Scripted(closing)
        async with server.running() as url, client() as http:
            bodies = [(await http.get(f"{url}/")).content for _ in range(2)]
        return bodies, server

    bodies, server = asyncio.run(scenario())
    assert bodies == [b"until the end"] * 2
    assert server.connections == 2


async def refuses_early(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    head = await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 507 Insufficient Storage\r\nContent-Length: 4\r\n\r\nfull")
    writer.write_eof()  # answered and done sending; the body is read and thrown away
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    while length > 0:
        length -= len(await reader.read(min(length, 1 << 20)))
    return False


def test_an_answer_before_the_body_is_read_is_the_reply() -> None:
    """A server that answers 507 before it has read a large PUT, then reads the rest: the
    client gets the 507, and does not reuse the connection the server ended."""

    async def body() -> AsyncIterator[bytes]:
        for _ in range(64):
            yield b"z" * (1 << 20)
            await asyncio.sleep(0)

    async def scenario() -> tuple[list[int], Scripted]:
        server = Scripted(refuses_early)
        async with server.running() as url, client() as http:
            headers = {"Content-Length": str(64 << 20)}
            statuses = [
                (await http.put(f"{url}/big", content=body(), headers=headers)).status_code
                for _ in range(2)
            ]
        return statuses, server

    statuses, server = asyncio.run(scenario())
    assert statuses == [507, 507]
    assert server.connections == 2


async def cut_short(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    await read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten..")
    await writer.drain()
    return False


def test_a_reply_cut_short_is_a_transport_error() -> None:
    """Fewer bytes than the Content-Length, then the end: an error, never a short body."""

    async def scenario() -> None:
        async with Scripted(cut_short).running() as url, client() as http:
            await http.get(f"{url}/")

    with pytest.raises(httpx.RemoteProtocolError):
        asyncio.run(scenario())


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    await read_request(reader)
    await asyncio.Event().wait()  # never answers
    return False


def test_no_answer_is_a_read_timeout() -> None:
    """A server that takes the request and says nothing: ReadTimeout after the timeout."""

    async def scenario() -> None:
        async with Scripted(silent).running() as url, client(timeout=0.3) as http:
            await http.get(f"{url}/")

    with pytest.raises(httpx.ReadTimeout):
        asyncio.run(scenario())


def test_no_server_is_a_connect_error() -> None:
    """Nothing listening: ConnectError, which the targets read as 'cannot reach'."""

    async def scenario() -> None:
        server = Scripted(sized)
        async with server.running():
            port = server.port
        async with client() as http:
            await http.get(f"http://127.0.0.1:{port}/")

    with pytest.raises(httpx.ConnectError):
        asyncio.run(scenario())


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a certificate it signed for 127.0.0.1 (openssl): (ca, cert, key)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs openssl to make a test certificate")
    ca_key, ca, key, request, cert = (
        folder / n for n in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem")
    )
    ext = folder / "ext.cnf"
    ext.write_text("subjectAltName = IP:127.0.0.1\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for command in (
        ["req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=test CA"],
        ["req", *ec, "-keyout", key, "-out", request, "-subj", "/CN=127.0.0.1"],
        [
            "x509",
            "-req",
            "-in",
            request,
            "-CA",
            ca,
            "-CAkey",
            ca_key,
            "-CAcreateserial",
            "-out",
            cert,
            "-days",
            "2",
            "-extfile",
            ext,
        ],
    ):
        subprocess.run(["openssl", *map(str, command)], check=True, capture_output=True)
    return ca, cert, key


async def tls_exchange(cert: Path, key: Path) -> tuple[list[bytes], Scripted]:
    """Three PUTs over https to a server with `cert`."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = Scripted(sized)
    listening = await asyncio.start_server(server.serve, "127.0.0.1", 0, ssl=context)
    port = listening.sockets[0].getsockname()[1]
    async with listening, client() as http:
        bodies = [
            (await http.put(f"https://127.0.0.1:{port}/f", content=b"t" * n)).content
            for n in (1, 2, 3)
        ]
    return bodies, server


def test_https_is_verified_and_kept_alive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """TLS: a certificate from a trusted CA (SSL_CERT_FILE, as httpx reads it) is accepted and
    its connection reused; the same server is refused while its CA is not trusted."""
    ca, cert, key = make_certificates(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    bodies, server = asyncio.run(tls_exchange(cert, key))
    assert bodies == [b"got 1", b"got 2", b"got 3"]
    assert server.connections == 1
    monkeypatch.delenv("SSL_CERT_FILE")
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        asyncio.run(tls_exchange(cert, key))
