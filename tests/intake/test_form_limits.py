"""Forms are capped in parts, files and text: 413 answered while the body is still coming.

A form of many small `name` fields grew the service with its body (520 MB form: +480 MB,
kept after the 400), and 1,100 file parts under a 1,024 descriptor limit ended in a 500.
Each refusal here leaves nothing behind, and comes before the client has sent the rest.
"""

from __future__ import annotations

import socket

from app.intake.form import MAX_FILE_PARTS, MAX_PARTS, MAX_TEXT_BYTES
from tests.conftest import Service
from tests.support import samples
from tests.support.on_disk import nothing_kept
from tests.support.uploads import post_form

BOUNDARY = "hostile-boundary"


def text_part(name: str, value: bytes) -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        + value
        + b"\r\n"
    )


def file_part(filename: str, data: bytes) -> bytes:
    return (
        (
            f"--{BOUNDARY}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + b"\r\n"
    )


def stream_form(service: Service, token: str, part: bytes, declared: int) -> tuple[int, int]:
    """Send `part` again and again under a huge Content-Length; (status, bytes sent)."""
    head = (
        f"POST /v1/uploads HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {declared}\r\n\r\n"
    ).encode()
    sent = 0
    with socket.create_connection(("127.0.0.1", service.settings.port), timeout=30) as sock:
        sock.sendall(head)
        sock.setblocking(False)
        reply = b""
        while sent < declared and not reply:
            try:
                sent += sock.send(part * 64)
            except BlockingIOError:
                pass
            except (BrokenPipeError, ConnectionResetError):
                break
            try:
                reply = sock.recv(65536)
            except BlockingIOError:
                continue
        sock.setblocking(True)
        reply = reply or sock.recv(65536)
    return int(reply.split(b" ", 2)[1]), sent


def test_more_files_than_the_cap_is_413_and_keeps_nothing(service: Service) -> None:
    """One file part over MAX_FILE_PARTS: 413 too_many_files, no spool file, no row."""
    files = [(f"IMG_{i:04d}.JPG", samples.jpeg(seed=i)) for i in range(MAX_FILE_PARTS + 1)]
    with service.device() as client:
        reply = post_form(client, files)
    assert reply.status_code == 413, reply.text
    assert reply.json()["error"]["code"] == "too_many_files"
    assert nothing_kept(service.settings)


def test_the_file_cap_itself_is_accepted(service: Service) -> None:
    """Exactly MAX_FILE_PARTS files in one form are all stored."""
    files = [(f"IMG_{i:04d}.JPG", samples.jpeg(seed=1000 + i)) for i in range(MAX_FILE_PARTS)]
    with service.device() as client:
        reply = post_form(client, files)
    assert reply.status_code == 201, reply.text


def test_endless_small_text_fields_are_refused_early(service: Service) -> None:
    """A 520 MB form of 10-byte name fields gets 413 after about a MiB, not at its end."""
    status, sent = stream_form(
        service, service.device_token, text_part("name", b"x" * 10), 520 << 20
    )
    assert status == 413
    assert sent < 64 << 20
    assert nothing_kept(service.settings)


def test_a_megabyte_of_text_in_few_fields_is_413(service: Service) -> None:
    """Fewer parts than the cap, but over MAX_TEXT_BYTES of text: 413 form_text_too_large."""
    fields = {"name": ["y" * 60_000] * (MAX_TEXT_BYTES // 60_000 + 1)}
    with service.device() as client:
        reply = post_form(client, [("a.jpg", samples.jpeg(seed=3))], fields)
    assert reply.status_code == 413, reply.text
    assert reply.json()["error"]["code"] == "form_text_too_large"
    assert nothing_kept(service.settings)


def test_more_parts_than_the_cap_is_413(service: Service) -> None:
    """MAX_PARTS + 1 tiny unknown fields: 413 too_many_parts."""
    body = b"".join(text_part("note", b"") for _ in range(MAX_PARTS + 1))
    body += file_part("a.jpg", samples.jpeg(seed=4)) + f"--{BOUNDARY}--\r\n".encode()
    with service.device() as client:
        reply = client.post(
            "/v1/uploads",
            content=body,
            headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        )
    assert reply.status_code == 413, reply.text
    assert reply.json()["error"]["code"] == "too_many_parts"
