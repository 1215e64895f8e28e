"""PUT /v1/blobs/{sha256}: new vs duplicate, hash checks, names, and concurrent senders."""

from __future__ import annotations

import inspect
import itertools
import socket
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from app.config import Settings
from app.intake.ingest import MAX_PIECES
from app.main import create_app
from tests.conftest import Service
from tests.support import samples
from tests.support.on_disk import item_rows, nothing_kept, spool_objects, spool_temp_files
from tests.support.servers import wait_for
from tests.support.uploads import put_blob, sha256_hex, wait_verified

# Fields a repeat must answer with unchanged; state and attempts move with the relay.
STABLE_FIELDS = (
    "sha256",
    "size",
    "original_name",
    "kind",
    "captured_at",
    "captured_source",
    "device",
    "received_at",
    "planned_path",
)


def stable(receipt: dict[str, object]) -> dict[str, object]:
    return {key: receipt[key] for key in STABLE_FIELDS}


def test_new_content_201_then_repeat_200_with_the_same_receipt(service: Service) -> None:
    """The first PUT answers 201 and new=true; the same bytes again 200 with the same receipt."""
    data = samples.jpeg(datetime(2024, 5, 1, 21, 4), seed=1)
    with service.device() as client:
        first = put_blob(client, data, name="IMG_0001.JPG")
        second = put_blob(client, data, name="IMG_0001.JPG")
    assert first.status_code == 201, first.text
    assert second.status_code == 200, second.text
    assert first.json()["new"] is True
    assert second.json()["new"] is False
    assert stable(first.json()) == stable(second.json())
    assert first.json()["size"] == len(data)
    assert first.json()["device"] == "phone"
    assert item_rows(service.settings) == [sha256_hex(data)]
    assert len(spool_objects(service.settings)) == 1
    assert spool_temp_files(service.settings) == []  # the repeat's hashed body is gone


def test_same_content_from_two_devices_is_kept_once_and_credited_to_the_first(
    service: Service,
) -> None:
    """A second device sending known content gets 200 and the first device's receipt."""
    data = samples.heic(datetime(2024, 6, 2, 8, 0), seed=2)
    sha = sha256_hex(data)
    tablet = service.add_device("tablet")
    with service.device() as phone_client, service.client(tablet) as tablet_client:
        first = put_blob(phone_client, data, name="IMG_0002.HEIC")
        second = put_blob(tablet_client, data, name="copy of IMG_0002.HEIC")
        receipt = wait_verified(phone_client, sha)
        journal = phone_client.get(f"/v1/items/{sha}/journal").json()
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["device"] == "phone"
    assert second.json()["original_name"] == "IMG_0002.HEIC"
    assert item_rows(service.settings) == [sha]
    assert [p.read_bytes() for p in service.library.rglob("*.HEIC")] == [data]
    assert receipt["remote_path"] == "2024/06/IMG_0002.HEIC"
    repeat = [e for e in journal if e["event"] == "item.duplicate"]
    assert len(repeat) == 1 and "tablet" in repeat[0]["message"]


def test_body_whose_hash_differs_from_the_url_is_refused_and_nothing_kept(
    service: Service,
) -> None:
    """A body that does not hash to the URL's sha256 gets 422 and leaves no trace."""
    data = samples.jpeg(seed=3)
    claimed = sha256_hex(b"something else")
    with service.device() as client:
        response = put_blob(client, data, name="IMG_0003.JPG", sha256=claimed)
        unknown = client.get(f"/v1/items/{claimed}")
        actual = client.get(f"/v1/items/{sha256_hex(data)}")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "hash_mismatch"
    assert sha256_hex(data) in response.json()["error"]["message"]
    assert (unknown.status_code, actual.status_code) == (404, 404)
    assert nothing_kept(service.settings)


@pytest.mark.parametrize(
    "bad_hash",
    ["abc", "0" * 63, "0" * 65, "g" * 64, "sha256-" + "0" * 57, "0" * 62 + "%20"],
    ids=["short", "63", "65", "not-hex", "prefixed", "space"],
)
def test_url_that_is_not_a_sha256_is_refused_with_422(service: Service, bad_hash: str) -> None:
    """Only 64 hexadecimal characters name a blob; anything else is a 422 and stores nothing."""
    with service.device() as client:
        response = client.put(f"/v1/blobs/{bad_hash}", content=b"data")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "bad_hash"
    assert nothing_kept(service.settings)


def test_upper_case_hash_in_the_url_is_accepted(service: Service) -> None:
    """Hex digests are compared case-insensitively (some tools print them in capitals)."""
    data = samples.jpeg(seed=4)
    with service.device() as client:
        response = put_blob(client, data, sha256=sha256_hex(data).upper())
    assert response.status_code == 201, response.text
    assert response.json()["sha256"] == sha256_hex(data)


def test_name_comes_from_the_query_when_there_is_no_content_disposition(
    service: Service,
) -> None:
    """`?name=` names the file when the client cannot set Content-Disposition."""
    data = samples.jpeg(datetime(2023, 2, 3, 4, 5), seed=5)
    with service.device() as client:
        response = client.put(
            f"/v1/blobs/{sha256_hex(data)}", content=data, params={"name": "IMG_0005.JPG"}
        )
    assert response.status_code == 201, response.text
    assert response.json()["original_name"] == "IMG_0005.JPG"
    assert response.json()["planned_path"] == "2023/02/IMG_0005.JPG"


@pytest.mark.parametrize(
    "disposition",
    [
        "attachment; filename*=UTF-8''Caf%C3%A9%20%F0%9F%8D%B0.jpg",
        "attachment; filename=\"cafe.jpg\"; filename*=UTF-8''Caf%C3%A9%20%F0%9F%8D%B0.jpg",
        'attachment; filename="Café 🍰.jpg"'.encode().decode("latin-1"),
    ],
    ids=["rfc5987", "both-prefers-extended", "raw-utf8"],
)
def test_utf8_file_name_from_content_disposition(service: Service, disposition: str) -> None:
    """Non-ASCII names arrive intact: `filename*=UTF-8''…` (preferred) or raw UTF-8."""
    data = samples.jpeg(datetime(2023, 2, 3, 4, 5), seed=6)
    with service.device() as client:
        response = client.put(
            f"/v1/blobs/{sha256_hex(data)}",
            content=data,
            headers=[("Content-Disposition", disposition.encode("latin-1"))],
        )
    assert response.status_code == 201, response.text
    assert response.json()["original_name"] == "Café 🍰.jpg"
    assert response.json()["planned_path"] == "2023/02/Café 🍰.jpg"


def test_file_without_a_name_is_named_after_its_hash_and_kind(service: Service) -> None:
    """A nameless upload gets `<sha8>.<ext>` with the extension read from its bytes."""
    data = samples.heic(datetime(2022, 7, 8, 9, 10), seed=7)
    with service.device() as client:
        response = put_blob(client, data)
    sha = sha256_hex(data)
    assert response.status_code == 201, response.text
    assert response.json()["planned_path"] == f"2022/07/{sha[:8]}.heic"


def test_twenty_concurrent_puts_of_the_same_content_store_it_once(service: Service) -> None:
    """20 clients sending the same bytes at once all get a 2xx; one object, one row, one new."""
    data = samples.jpeg(datetime(2024, 1, 2, 3, 4), seed=8, padding=1024 * 1024)
    sha = sha256_hex(data)

    def send(_: int) -> httpx.Response:
        with service.device() as client:
            return put_blob(client, data, name="IMG_0008.JPG")

    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(send, range(20)))
    assert all(r.status_code in (200, 201) for r in responses), [r.text for r in responses]
    assert sum(1 for r in responses if r.json()["new"]) == 1
    assert {r.json()["received_at"] for r in responses} == {responses[0].json()["received_at"]}
    assert item_rows(service.settings) == [sha]
    assert [p.name for p in spool_objects(service.settings)] == [sha]
    assert spool_temp_files(service.settings) == []
    with service.device() as client:
        wait_verified(client, sha)
    assert [p.read_bytes() == data for p in service.library.rglob("*.JPG")] == [True]


def test_a_client_that_hangs_up_mid_body_leaves_nothing(service: Service) -> None:
    """Closing the connection after 2 of 8 declared MiB removes the partial file."""
    sha = sha256_hex(b"never completed")
    with socket.create_connection(("127.0.0.1", service.settings.port), timeout=10) as sock:
        sock.sendall(
            (
                f"PUT /v1/blobs/{sha} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {service.device_token}\r\n"
                f"Content-Length: {8 * 1024 * 1024}\r\n\r\n"
            ).encode()
        )
        sock.sendall(bytes(2 * 1024 * 1024))
        wait_for(
            lambda: spool_temp_files(service.settings), what="the partial upload to be spooled"
        )
    wait_for(lambda: nothing_kept(service.settings), what="the partial upload to be removed")
    with service.device() as client:
        assert client.get(f"/v1/items/{sha}").status_code == 404


def test_a_body_in_thousands_of_tiny_pieces_is_stored_byte_identical(service: Service) -> None:
    """A chunked body of thousands of 1-13 byte pieces (many writes' worth) arrives whole."""
    data = samples.jpeg(datetime(2024, 5, 1, 9, 0), seed=7, padding=20_000)
    pieces, offset = [], 0
    for size in itertools.cycle(range(1, 14)):
        if offset >= len(data):
            break
        pieces.append(data[offset : offset + size])
        offset += size
    assert len(pieces) > 4 * MAX_PIECES, "the sample is too small to need several writes"

    def body() -> Iterator[bytes]:
        yield from pieces

    with service.device() as client:
        response = client.put(f"/v1/blobs/{sha256_hex(data)}", content=body())
    assert response.status_code == 201, response.text
    (stored,) = spool_objects(service.settings)
    assert stored.read_bytes() == data


def test_a_wrong_body_for_a_known_hash_is_refused_and_the_stored_copy_is_unharmed(
    service: Service,
) -> None:
    """Known hash, other bytes: 422 (not 200 "already safe"), the receipt and copy as they were."""
    data = samples.jpeg(datetime(2024, 5, 2, 8, 0), seed=11)
    other = samples.jpeg(datetime(2024, 5, 2, 8, 0), seed=12)
    sha = sha256_hex(data)
    with service.device() as client:
        assert put_blob(client, data, name="IMG_0011.JPG").status_code == 201
        before = client.get(f"/v1/items/{sha}").json()
        response = put_blob(client, other, name="IMG_0012.JPG", sha256=sha)
        after = client.get(f"/v1/items/{sha}").json()
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "hash_mismatch"
    assert sha256_hex(other) in response.json()["error"]["message"]
    assert stable(after) == stable(before)
    (stored,) = spool_objects(service.settings)
    assert stored.read_bytes() == data
    assert spool_temp_files(service.settings) == []
    assert item_rows(service.settings) == [sha]


def test_a_repeat_put_is_answered_only_after_its_whole_body_arrived(service: Service) -> None:
    """For a known hash the server still reads the body: no reply while half of it is unsent."""
    data = samples.jpeg(datetime(2024, 5, 3, 8, 0), seed=13, padding=2 * 1024 * 1024)
    sha = sha256_hex(data)
    with service.device() as client:
        assert put_blob(client, data).status_code == 201
    half = len(data) // 2
    with socket.create_connection(("127.0.0.1", service.settings.port), timeout=10) as sock:
        sock.sendall(
            (
                f"PUT /v1/blobs/{sha} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {service.device_token}\r\n"
                f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
            ).encode()
        )
        sock.sendall(data[:half])
        # The first half is being written and hashed, and nothing has been answered yet.
        wait_for(lambda: spool_temp_files(service.settings), what="the body to be read")
        sock.settimeout(0.0)  # look, do not wait
        with pytest.raises(BlockingIOError):
            sock.recv(1)
        sock.settimeout(10)
        sock.sendall(data[half:])
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 200 "), reply[:200]
    assert len(spool_objects(service.settings)) == 1
    wait_for(lambda: not spool_temp_files(service.settings), what="the repeat's temp file to go")


def api_routes(routes: list[Any]) -> Iterator[tuple[APIRoute, list[Callable[..., Any]]]]:
    """Every APIRoute, through included routers, with the dependencies those routers add."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route, []
        included = getattr(route, "original_router", None)
        if included is not None:
            extra = [d.dependency for d in route.include_context.dependencies if d.dependency]
            for inner, more in api_routes(included.routes):
                yield inner, extra + more


def dependency_calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from dependency_calls(sub)


def test_no_route_dependency_costs_a_thread_hop(settings: Settings) -> None:
    """FastAPI runs a plain `def` dependency in a worker thread: one hop per request each.

    Every dependency of every API route is `async def`, so an upload leaves the event loop
    only where it blocks (writes, fsyncs, the database).
    """
    app = create_app(settings)
    routes = list(api_routes(app.routes))
    assert {"/v1/blobs/{sha256}", "/v1/uploads"} <= {route.path for route, _ in routes}
    sync = {
        f"{route.path}: {call.__qualname__}"
        for route, extra in routes
        for call in [*extra, *dependency_calls(route.dependant)]
        if not inspect.iscoroutinefunction(call)
    }
    assert not sync
