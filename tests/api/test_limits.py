"""Limits with clear errors: too large (413), empty (422), malformed forms (400), no room (507).

Each refusal must leave nothing behind: no spool object, no temp file, no row.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator

import pytest

from tests.conftest import Service
from tests.support import samples
from tests.support.on_disk import nothing_kept
from tests.support.uploads import post_form, put_blob, sha256_hex

LIMIT = 64 * 1024


@pytest.fixture
def small_limit(start_service: Callable[..., Service]) -> Service:
    return start_service(max_upload_bytes=LIMIT)


def raw_request(service: Service, head: str, body: bytes = b"") -> tuple[int, dict[str, object]]:
    """Send a request head (and maybe the start of a body) on a bare socket; read the reply.

    The connection stays open without sending the rest of the body, so a server that
    tried to read the body before answering would hang here until the timeout.
    """
    with socket.create_connection(("127.0.0.1", service.settings.port), timeout=10) as sock:
        sock.sendall(head.encode("latin-1") + body)
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    status_line, _, rest = reply.partition(b"\r\n")
    _, _, payload = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), json.loads(payload)


def test_put_over_the_limit_by_content_length_is_refused_before_the_body(
    small_limit: Service,
) -> None:
    """A declared Content-Length above the limit gets 413 without the body being sent."""
    sha = sha256_hex(b"never sent")
    head = (
        f"PUT /v1/blobs/{sha} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {small_limit.device_token}\r\n"
        f"Content-Length: {50 * 1024**3}\r\n\r\n"
    )
    status, body = raw_request(small_limit, head, b"\xff\xd8\xff")
    assert status == 413
    assert body["error"]["code"] == "too_large"  # type: ignore[index]
    assert "PHOTO_RELAY_MAX_UPLOAD_BYTES" in body["error"]["message"]  # type: ignore[index]
    assert nothing_kept(small_limit.settings)


def test_form_over_the_limit_by_content_length_is_refused_before_the_body(
    small_limit: Service,
) -> None:
    """A multipart body declared far above the limit gets 413 before it is read."""
    head = (
        "POST /v1/uploads HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {small_limit.device_token}\r\n"
        "Content-Type: multipart/form-data; boundary=xyz\r\n"
        f"Content-Length: {50 * 1024**3}\r\n\r\n"
    )
    status, body = raw_request(small_limit, head, b"--xyz\r\n")
    assert status == 413
    assert body["error"]["code"] == "too_large"  # type: ignore[index]
    assert nothing_kept(small_limit.settings)


def chunks_of(data: bytes, size: int = 8192) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_chunked_put_over_the_limit_is_refused_and_its_temp_file_removed(
    small_limit: Service,
) -> None:
    """Without Content-Length the limit is enforced while streaming; the partial file goes."""
    data = samples.jpeg(seed=40, padding=LIMIT * 3)
    with small_limit.device() as client:
        response = client.put(f"/v1/blobs/{sha256_hex(data)}", content=chunks_of(data))
    assert "content-length" not in response.request.headers
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "too_large"
    assert nothing_kept(small_limit.settings)


def test_chunked_form_over_the_limit_is_refused_and_its_temp_file_removed(
    small_limit: Service,
) -> None:
    """A streamed form whose file grows past the limit gets 413 and leaves nothing."""
    data = samples.jpeg(seed=41, padding=LIMIT * 3)
    body = (
        b"--xyz\r\nContent-Disposition: form-data; name=file; filename=big.jpg\r\n\r\n"
        + data
        + b"\r\n--xyz--\r\n"
    )
    with small_limit.device() as client:
        response = client.post(
            "/v1/uploads",
            content=chunks_of(body),
            headers={"Content-Type": "multipart/form-data; boundary=xyz"},
        )
    assert response.status_code == 413, response.text
    assert nothing_kept(small_limit.settings)


def test_a_file_of_exactly_the_limit_is_accepted(small_limit: Service) -> None:
    """The limit is inclusive: a file of exactly max_upload_bytes is stored, by PUT or form."""
    one, two = samples.jpeg(seed=42), samples.jpeg(seed=44)
    one, two = one + bytes(LIMIT - len(one)), two + bytes(LIMIT - len(two))
    with small_limit.device() as client:
        assert post_form(client, [("one.jpg", one)]).status_code == 201
        assert put_blob(client, two).status_code == 201
        assert put_blob(client, one + b"!").status_code == 413
        assert post_form(client, [("two.jpg", two + b"!")]).status_code == 413


def test_empty_files_are_refused_with_422(service: Service) -> None:
    """A 0-byte body or file part is a 422 saying the file is empty; nothing is kept."""
    with service.device() as client:
        by_put = put_blob(client, b"", name="IMG_0001.JPG")
        by_form = post_form(client, [("IMG_0001.JPG", b"")])
    for response in (by_put, by_form):
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "empty_file"
    assert nothing_kept(service.settings)


MALFORMED = {
    "no-content-type": ({}, b"--xyz--\r\n"),
    "not-multipart": ({"Content-Type": "application/json"}, b"{}"),
    "no-boundary": ({"Content-Type": "multipart/form-data"}, b"--xyz--\r\n"),
    "garbage": (
        {"Content-Type": "multipart/form-data; boundary=xyz"},
        b"\x00\x01 this is not a form at all \xff" * 100,
    ),
    "truncated": (
        {"Content-Type": "multipart/form-data; boundary=xyz"},
        b"--xyz\r\nContent-Disposition: form-data; name=file; filename=a.jpg\r\n\r\n"
        + bytes(300_000),
    ),
    "no-file-part": (
        {"Content-Type": "multipart/form-data; boundary=xyz"},
        b"--xyz\r\nContent-Disposition: form-data; name=name\r\n\r\nIMG_0001.JPG\r\n--xyz--\r\n",
    ),
    "part-without-disposition": (
        {"Content-Type": "multipart/form-data; boundary=xyz"},
        b"--xyz\r\nContent-Type: image/jpeg\r\n\r\nabc\r\n--xyz--\r\n",
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_multipart_is_refused_with_400(service: Service, case: str) -> None:
    """A body that is not a complete form with a file gets 400 and leaves no temp file."""
    headers, body = MALFORMED[case]
    with service.device() as client:
        response = client.post("/v1/uploads", content=body, headers=headers)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "malformed_multipart"
    assert nothing_kept(service.settings)


@pytest.fixture
def no_room(start_service: Callable[..., Service]) -> Service:
    return start_service(min_free_bytes=2**62)


@pytest.mark.parametrize("streamed", [False, True], ids=["content-length", "chunked"])
def test_no_room_in_the_spool_is_507_and_leaves_no_temp_file(
    no_room: Service, streamed: bool
) -> None:
    """When the spool's disk cannot keep its reserve, uploads get 507 and nothing stays."""
    data = samples.jpeg(seed=43)
    with no_room.device() as client:
        content = chunks_of(data) if streamed else data
        by_put = client.put(f"/v1/blobs/{sha256_hex(data)}", content=content)
        by_form = post_form(client, [("a.jpg", data)])
    for response in (by_put, by_form):
        assert response.status_code == 507, response.text
        assert response.json()["error"]["code"] == "insufficient_storage"
        assert "Free some disk space" in response.json()["error"]["message"]
    assert nothing_kept(no_room.settings)
