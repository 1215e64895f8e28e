"""Bad input: hostile or broken requests get a clear 4xx, and nothing stored before is harmed.

A sentinel photo is stored and relayed first; after each barrage its receipt, its spool
object and its library copy must be exactly as before. Names are not refused but made safe
(a photo called `..` is still a photo): those tests check where the file lands instead.
"""

from __future__ import annotations

import json
import socket
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Service, make_settings, running
from tests.reliability.harness import Tally, blob, sha256_hex
from tests.support.servers import wait_for

pytestmark = pytest.mark.reliability

SENTINEL = blob(424242, 200_000)


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[Service]:
    """A service with a 1-second body idle timeout and one verified sentinel photo."""
    with running(make_settings(tmp_path, upload_idle_timeout_seconds=1.0)) as service:
        with service.device() as client:
            reply = client.put(
                f"/v1/blobs/{sha256_hex(SENTINEL)}?name=SENTINEL.JPG", content=SENTINEL
            )
            assert reply.status_code == 201
            wait_for(
                lambda: (
                    client.get(f"/v1/items/{sha256_hex(SENTINEL)}").json()["state"] == "verified"
                ),
                what="the sentinel to be relayed",
            )
        before = sentinel_snapshot(service)
        yield service
        assert sentinel_snapshot(service) == before, "the barrage harmed a stored photo"


def sentinel_snapshot(service: Service) -> tuple[Any, ...]:
    sha = sha256_hex(SENTINEL)
    with service.device() as client:
        receipt = client.get(f"/v1/items/{sha}").json()
    spool = (service.settings.spool_dir / "objects" / sha[:2] / sha).read_bytes()
    library = (service.library / receipt["remote_path"]).read_bytes()
    assert spool == SENTINEL and library == SENTINEL
    return receipt["state"], receipt["remote_path"], receipt["received_at"], len(library)


def assert_clear_error(
    reply: httpx.Response, status: int | tuple[int, ...], code: str = ""
) -> None:
    statuses = (status,) if isinstance(status, int) else status
    assert reply.status_code in statuses, (reply.status_code, reply.text[:300])
    error = reply.json()["error"]
    assert error["message"] and len(error["message"]) > 20
    if code:
        assert error["code"] == code, error


def spool_tmp_empty(service: Service) -> bool:
    return not list((service.settings.spool_dir / "tmp").iterdir())


ENDPOINTS = [
    ("PUT", "/v1/blobs/" + "a" * 64),
    ("POST", "/v1/uploads"),
    ("GET", "/v1/items/" + "a" * 64),
    ("GET", "/v1/items/" + "a" * 64 + "/journal"),
    ("POST", "/v1/items/check"),
    ("POST", "/v1/items/retry"),
    ("GET", "/v1/status"),
    ("GET", "/v1/devices"),
]


def test_missing_wrong_and_revoked_tokens_are_refused(guarded: Service) -> None:
    """No token, a wrong token, a malformed header or a revoked token: 401 on every endpoint."""
    tally = Tally("bad-input-tokens")
    revoked = guarded.add_device("old-phone")
    with guarded.client(revoked) as client:
        assert client.get(f"/v1/items/{sha256_hex(SENTINEL)}").status_code == 200
    guarded.server.app_services.state.revoke_device("old-phone")
    variants: list[dict[str, str]] = [
        {},
        {"Authorization": "Bearer prd_wrong"},
        {"Authorization": "Basic " + "x" * 20},
        {"Authorization": "Bearer"},
        {"Authorization": f"Bearer {revoked}"},
        {"Authorization": f"bearer  {guarded.device_token}x"},
    ]
    with httpx.Client(base_url=guarded.base_url, timeout=30) as client:
        for method, path in ENDPOINTS:
            for headers in variants:
                reply = client.request(method, path, headers=headers, content=b"x")
                assert_clear_error(reply, 401)
                assert reply.headers["www-authenticate"] == "Bearer"
                tally.add("requests")
    tally.report()


def test_device_token_is_refused_on_admin_endpoints(guarded: Service) -> None:
    """A device token cannot read the status, the devices, or requeue items."""
    with guarded.device() as client:
        for method, path in [("GET", "/v1/status"), ("GET", "/v1/devices")]:
            assert_clear_error(client.request(method, path), 401, "admin_token_required")
        assert_clear_error(client.post("/v1/items/retry"), 401, "admin_token_required")


@pytest.mark.parametrize(
    "claimed",
    [
        "g" * 64,  # not hex
        "a" * 63,  # too short
        "a" * 65,  # too long
        "a" * 7_000,  # far too long, the request line still within the 8 KiB that serve allows
        "../../etc/passwd",
        "%00" + "a" * 61,
    ],
)
def test_bad_hashes_get_422(guarded: Service, claimed: str) -> None:
    """A hash that is not 64 hex digits is refused before anything is read or stored."""
    with guarded.device() as client:
        reply = client.put("/v1/blobs/" + urllib.parse.quote(claimed, safe=""), content=b"data")
        assert reply.status_code in (404, 422), reply.text
        assert reply.json()["error"]["code"] in ("bad_hash", "not_found")
        check = client.post("/v1/items/check", json={"sha256": [claimed]})
        assert_clear_error(check, 422, "bad_hash")
        form = client.post(
            "/v1/uploads", files={"file": ("a.jpg", b"data")}, data={"sha256": claimed[:1000]}
        )
        assert_clear_error(form, (400, 422))
    assert spool_tmp_empty(guarded)


def test_hash_mismatch_stores_nothing(guarded: Service) -> None:
    """A body that does not match its claimed hash: 422 hash_mismatch, no item, no temp file."""
    data = blob(5, 100_000)
    wrong = sha256_hex(data + b"!")
    with guarded.device() as client:
        assert_clear_error(client.put(f"/v1/blobs/{wrong}", content=data), 422, "hash_mismatch")
        assert client.get(f"/v1/items/{wrong}").status_code == 404
        assert client.get(f"/v1/items/{sha256_hex(data)}").status_code == 404
        form = client.post("/v1/uploads", files={"file": ("a.jpg", data)}, data={"sha256": wrong})
        assert_clear_error(form, 422, "hash_mismatch")
    assert spool_tmp_empty(guarded)


def raw_request(service: Service, head: bytes, body_parts: list[bytes]) -> bytes:
    """Send a request by hand over a socket; return everything the server answered."""
    host, port = "127.0.0.1", service.settings.port
    with socket.create_connection((host, port), timeout=30) as sock:
        sock.sendall(head)
        for part in body_parts:
            sock.sendall(part)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_trickling_body_is_cut_off_with_408(guarded: Service) -> None:
    """A body that stops arriving gets 408 after the idle timeout; its temp file is removed."""
    tally = Tally("bad-input-trickle")
    sha = "b" * 64
    for path, content_type in [
        (f"/v1/blobs/{sha}", "application/octet-stream"),
        ("/v1/uploads", "multipart/form-data; boundary=xyz"),
    ]:
        head = (
            f"PUT {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {guarded.device_token}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: 1000000\r\n\r\n"
        ).encode()
        if path == "/v1/uploads":
            head = head.replace(b"PUT ", b"POST ", 1)
            first = b'--xyz\r\nContent-Disposition: form-data; name="f"; filename="a.jpg"\r\n\r\n'
        else:
            first = b"x" * 1000
        answer = raw_request(guarded, head, [first])  # then silence: the server must act
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        body = json.loads(answer.partition(b"\r\n\r\n")[2])
        assert body["error"]["code"] == "body_timeout"
        wait_for(lambda: spool_tmp_empty(guarded), what="the partial temp file to go")
        tally.add("trickled_bodies")
    tally.report()


def test_huge_headers_are_refused(guarded: Service) -> None:
    """A 100 KB header or 2,000 headers (120 KB) are refused with a 4xx; the service goes on."""
    with guarded.device() as client:
        for headers in [{"X-Big": "a" * 100_000}, {f"X-H{n}": "v" * 60 for n in range(2000)}]:
            try:
                reply = client.get(f"/v1/items/{sha256_hex(SENTINEL)}", headers=headers)
            except httpx.TransportError:
                continue  # uvicorn's parser refused it and closed the connection
            assert 400 <= reply.status_code < 500, reply.status_code
        assert client.get(f"/v1/items/{sha256_hex(SENTINEL)}").status_code == 200


MALFORMED_FORMS: dict[str, tuple[str, bytes]] = {
    "no boundary": ("multipart/form-data", b"--x\r\n\r\n"),
    "not multipart": ("application/json", b"{}"),
    "garbage": ("multipart/form-data; boundary=xyz", b"\x00\xff" * 5000),
    "truncated": (
        "multipart/form-data; boundary=xyz",
        b'--xyz\r\nContent-Disposition: form-data; name="f"; filename="a.jpg"\r\n\r\n'
        + b"1" * 5000,
    ),
    "no file part": (
        "multipart/form-data; boundary=xyz",
        b'--xyz\r\nContent-Disposition: form-data; name="name"\r\n\r\nx\r\n--xyz--\r\n',
    ),
    "part without disposition": (
        "multipart/form-data; boundary=xyz",
        b"--xyz\r\nContent-Type: image/jpeg\r\n\r\nabc\r\n--xyz--\r\n",
    ),
    "two files one name": (
        "multipart/form-data; boundary=xyz",
        b'--xyz\r\nContent-Disposition: form-data; name="f"; filename="a.jpg"\r\n\r\nA\r\n'
        b'--xyz\r\nContent-Disposition: form-data; name="f"; filename="b.jpg"\r\n\r\nB\r\n'
        b'--xyz\r\nContent-Disposition: form-data; name="name"\r\n\r\nx\r\n--xyz--\r\n',
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED_FORMS))
def test_malformed_multipart_gets_400_and_stores_nothing(guarded: Service, case: str) -> None:
    """Broken, cut-off or unpaired multipart forms: a clear 400, no item, no temp file."""
    content_type, body = MALFORMED_FORMS[case]
    with guarded.device() as client:
        reply = client.post("/v1/uploads", content=body, headers={"Content-Type": content_type})
        assert_clear_error(reply, 400)
        assert client.post("/v1/items/check", json={"sha256": [sha256_hex(b"A")]}).json()[
            "missing"
        ] == [sha256_hex(b"A")]
    assert spool_tmp_empty(guarded)


def test_oversized_and_deeply_nested_json_on_check_gets_4xx(guarded: Service) -> None:
    """Too many hashes, a 30 MB body, 100,000-deep nesting or not-JSON: a clear 4xx each."""
    tally = Tally("bad-input-json")
    bodies = [
        json.dumps({"sha256": ["a" * 64] * 20_001}).encode(),
        b'{"sha256": ["' + b"a" * 30_000_000 + b'"]}',
        b'{"sha256": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b"{" * 100_000,
        b"not json",
        b'{"sha256": "a"}',
        b"[]",
        b"",
    ]
    with guarded.device() as client:
        for body in bodies:
            reply = client.post(
                "/v1/items/check", content=body, headers={"Content-Type": "application/json"}
            )
            assert_clear_error(reply, (400, 413, 422))
            tally.add("bodies")
    tally.report()


NAMES = [
    "..",
    "../../../etc/passwd",
    "a/b/c.jpg",
    "..\\..\\windows.jpg",
    "nul\x00byte.jpg",
    "ctrl\x01\x1f\x7f.jpg",
    "x" * 1000 + ".jpg",
    "é" * 600 + ".jpg",
    "Cafe\u0301.jpg",  # NFD
    "\U0001f4f7\U0001f305.heic",
    ".DS_Store",
    "",
    " ",
    "CON.jpg",
]


def test_hostile_names_land_safely_inside_the_library(guarded: Service) -> None:
    """Names with .., slashes, NUL, controls, 1,000 bytes, NFD, emoji: stored under safe names."""
    tally = Tally("bad-input-names")
    library = guarded.library.resolve()
    shas = []
    with guarded.device() as client:
        for index, name in enumerate(NAMES):
            data = blob(7000 + index, 5_000)
            sha = sha256_hex(data)
            encoded = urllib.parse.quote(name.encode("utf-8"), safe="")
            reply = client.put(
                f"/v1/blobs/{sha}",
                content=data,
                headers={"Content-Disposition": f"attachment; filename*=UTF-8''{encoded}"},
            )
            assert reply.status_code == 201, (name, reply.text)
            planned = reply.json()["planned_path"]
            for part in planned.split("/"):
                assert part not in ("", ".", "..") and not part.startswith(".")
                assert not any(ord(c) < 32 or c in "\\\x7f" for c in part), planned
                assert len(part.encode("utf-8")) <= 255
            shas.append(sha)
            tally.add("names")
        wait_for(
            lambda: all(client.get(f"/v1/items/{s}").json()["state"] == "verified" for s in shas),
            what="the oddly named files to be relayed",
        )
    for path in library.rglob("*"):
        assert path.resolve().is_relative_to(library)
    assert not list(library.parent.glob("etc")) and not (library.parent / "windows.jpg").exists()
    tally.report()
