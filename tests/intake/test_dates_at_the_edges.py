"""Capture times at the edges: years 1-9999, offsets to ±14:00, leap seconds; 201 or 422, never 500.

A value is accepted when every zone can show it (a day inside datetime's range) and its
offset is one a zone uses; anything else is a 422 naming the problem. Whatever was
accepted must not break a later request: the receipt, the status page, the status API.
"""

from __future__ import annotations

import zlib

import pytest

from tests.conftest import Service
from tests.support import samples
from tests.support.uploads import post_form, put_blob, sha256_hex

ACCEPTED = [
    "0001-01-02T00:00:00",
    "0001-01-03T00:00:00+14:00",
    "9999-12-29T09:59:59-14:00",
    "9999-12-29T23:59:59",
    "2016-12-31T23:59:60Z",  # a leap second
    "2024-02-29T12:00:00+13:45",  # Chatham Islands
]
REFUSED = [
    "0001-01-01T00:00:00+05:00",  # year 0 in UTC
    "9999-12-31T23:59:59-14:00",  # year 10000 in UTC
    "0001-01-01",
    "9999-12-31T23:59:59.999999",
    "2024-01-01T00:00:00+14:30",
    "2024-01-01T00:00:00-23:59",
    "2024-01-01T24:00:01",
]


def later_requests_still_work(service: Service, sha256: str) -> None:
    with service.admin() as admin:
        assert admin.get(f"/v1/items/{sha256}").status_code == 200
        assert admin.get(f"/v1/items/{sha256}/journal").status_code == 200
        assert admin.get("/v1/status").status_code == 200
        login = admin.post("/login", data={"token": service.admin_token}, follow_redirects=False)
        assert login.status_code == 303
        assert admin.get("/").status_code == 200
        assert admin.get(f"/items/{sha256}").status_code == 200


@pytest.mark.parametrize("value", ACCEPTED)
def test_an_edge_date_that_every_zone_can_show_is_accepted(service: Service, value: str) -> None:
    """The upload gets 201 with the client's date, and the item's pages still answer."""
    data = samples.jpeg(seed=zlib.crc32(value.encode()) % 100_000)
    with service.device() as client:
        reply = put_blob(client, data, captured_at=value, name="edge.jpg")
    assert reply.status_code == 201, reply.text
    assert reply.json()["captured_source"] == "client"
    later_requests_still_work(service, sha256_hex(data))


@pytest.mark.parametrize("value", REFUSED)
def test_a_date_beyond_the_edges_is_refused_with_422(service: Service, value: str) -> None:
    """Header and form field alike: 422 bad_capture_time, never a 500."""
    data = samples.jpeg(seed=100_000 + zlib.crc32(value.encode()) % 100_000)
    with service.device() as client:
        by_header = put_blob(client, data, captured_at=value)
        by_form = post_form(client, [("x.jpg", data)], {"captured_at": [value]})
    for reply in (by_header, by_form):
        assert reply.status_code == 422, reply.text
        assert reply.json()["error"]["code"] == "bad_capture_time"
