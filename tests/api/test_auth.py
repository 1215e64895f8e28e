"""Tokens: uploads need a device token, admin endpoints the admin token; 401 is JSON."""

from __future__ import annotations

import httpx
import pytest

from app.store.db import Database
from app.store.state import State
from tests.conftest import Service
from tests.support import samples
from tests.support.on_disk import nothing_kept
from tests.support.uploads import post_form, put_blob, sha256_hex

ADMIN_ENDPOINTS = [("GET", "/v1/status"), ("GET", "/v1/devices"), ("POST", "/v1/items/retry")]


def send_upload(client: httpx.Client, how: str) -> httpx.Response:
    data = samples.jpeg(seed=30)
    if how == "put":
        return put_blob(client, data, name="IMG_0030.JPG")
    return post_form(client, [("IMG_0030.JPG", data)])


def assert_refused(response: httpx.Response, code: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"]


@pytest.mark.parametrize("how", ["put", "form"])
def test_upload_without_a_token_is_refused_and_nothing_is_kept(service: Service, how: str) -> None:
    """No Authorization header: 401 telling how to get a token; nothing stored."""
    with service.client() as client:
        response = send_upload(client, how)
    assert_refused(response, "missing_token")
    assert "photo-relay device add" in response.json()["error"]["message"]
    assert nothing_kept(service.settings)


@pytest.mark.parametrize(
    "authorization",
    ["Bearer not-a-real-token", "Basic dXNlcjpwYXNz", "Bearer", "prd_abc"],
    ids=["unknown", "basic", "empty", "no-scheme"],
)
def test_upload_with_a_wrong_token_is_refused(service: Service, authorization: str) -> None:
    """Unknown tokens and other schemes get 401, and nothing is stored."""
    with service.client() as client:
        response = client.put(
            f"/v1/blobs/{sha256_hex(b'x')}", content=b"x", headers={"Authorization": authorization}
        )
    assert response.status_code == 401
    assert response.json()["error"]["code"] in ("missing_token", "invalid_token")
    assert nothing_kept(service.settings)


def test_a_revoked_token_is_refused_at_once(service: Service) -> None:
    """After revoking a device, its very next request gets 401; other devices still work."""
    tablet = service.add_device("tablet")
    with service.device() as phone, service.client(tablet) as other:
        assert send_upload(phone, "put").status_code == 201
        db = Database(service.settings.database_path)
        try:
            State(db).revoke_device("phone")
        finally:
            db.close()
        assert_refused(send_upload(phone, "form"), "invalid_token")
        assert_refused(phone.get(f"/v1/items/{sha256_hex(b'x')}"), "invalid_token")
        assert send_upload(other, "form").status_code == 200


@pytest.mark.parametrize(("method", "path"), ADMIN_ENDPOINTS)
def test_a_device_token_is_refused_on_admin_endpoints(
    service: Service, method: str, path: str
) -> None:
    """A device token is not enough for status, devices and retry."""
    with service.device() as client:
        assert_refused(client.request(method, path), "admin_token_required")
    with service.client() as client:
        assert_refused(client.request(method, path), "missing_token")


@pytest.mark.parametrize(("method", "path"), ADMIN_ENDPOINTS)
def test_the_admin_token_is_accepted_on_admin_endpoints(
    service: Service, method: str, path: str
) -> None:
    """The admin token opens status, devices and retry."""
    with service.admin() as client:
        response = client.request(method, path)
    assert response.status_code == 200, response.text


def test_receipts_can_be_read_with_the_admin_token(service: Service) -> None:
    """The admin may read any receipt, but uploads need a device token."""
    data = samples.jpeg(seed=31)
    with service.device() as device:
        assert put_blob(device, data).status_code == 201
    with service.admin() as admin:
        assert admin.get(f"/v1/items/{sha256_hex(data)}").status_code == 200
        assert_refused(put_blob(admin, samples.jpeg(seed=32)), "device_token_required")


def test_the_devices_list_shows_names_and_never_tokens(service: Service) -> None:
    """GET /v1/devices lists each device and whether it is revoked, without any secret."""
    service.add_device("tablet")
    with service.device() as device:
        device.get("/v1/items/" + "0" * 64)
    with service.admin() as admin:
        response = admin.get("/v1/devices")
    devices = {d["name"]: d for d in response.json()}
    assert set(devices) == {"phone", "tablet"}
    assert devices["phone"]["last_seen_at"] is not None
    assert devices["tablet"]["last_seen_at"] is None
    assert service.device_token not in response.text
    assert "token" not in " ".join(devices["phone"])
