"""A wrong endpoint or the wrong kind of token gets an answer that says what to use instead."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.conftest import Service
from tests.support import samples
from tests.support.on_disk import nothing_kept
from tests.support.uploads import post_form, put_blob, sha256_hex

SHA = "ab" * 32


def endpoints_named(message: str) -> set[str]:
    return set(re.findall(r"\b(GET|PUT|POST|DELETE|PATCH|HEAD) (/[\w/{}.-]*[\w/}])", message))


def real_endpoints(client: httpx.Client) -> set[tuple[str, str]]:
    paths = client.get("/openapi.json").json()["paths"]
    return {(method.upper(), path) for path, item in paths.items() for method in item}


def error_of(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == code
    message: str = error["message"]
    return message


def test_post_to_a_blob_names_put_and_the_form_endpoint(service: Service) -> None:
    """POST /v1/blobs/{sha}: 405 that names PUT on the same path and POST /v1/uploads."""
    data = samples.jpeg(seed=70)
    with service.device() as client:
        response = client.post(f"/v1/blobs/{sha256_hex(data)}", content=data)
        message = error_of(response, 405, "method_not_allowed")
        assert "PUT" in response.headers["allow"]
        assert {("PUT", "/v1/blobs/{sha256}"), ("POST", "/v1/uploads")} <= endpoints_named(message)
        assert endpoints_named(message) <= real_endpoints(client)
        assert "/docs" in message
    assert nothing_kept(service.settings)


def test_a_wrong_method_on_an_admin_path_names_the_right_one(service: Service) -> None:
    """DELETE /v1/devices: 405 naming GET /v1/devices, the only method that path takes."""
    with service.admin() as client:
        message = error_of(client.delete("/v1/devices"), 405, "method_not_allowed")
    assert endpoints_named(message) == {("GET", "/v1/devices")}


@pytest.mark.parametrize(
    ("method", "path", "meant"),
    [
        ("PUT", f"/v1/blob/{SHA}", ("PUT", "/v1/blobs/{sha256}")),
        ("POST", "/v1/upload", ("POST", "/v1/uploads")),
        ("GET", "/v1/statuss", ("GET", "/v1/status")),
        ("GET", f"/v1/item/{SHA}", ("GET", "/v1/items/{sha256}")),
    ],
    ids=["blob", "upload", "status", "item"],
)
def test_an_unknown_api_path_names_the_nearest_real_endpoint(
    service: Service, method: str, path: str, meant: tuple[str, str]
) -> None:
    """A misspelt /v1/ path: 404 whose message names the endpoint meant, and /docs."""
    with service.device() as client:
        message = error_of(client.request(method, path, content=b"x"), 404, "not_found")
        named = endpoints_named(message.partition("Did you mean")[2])
        assert meant in named, message
        assert named <= real_endpoints(client)
    assert "/docs" in message
    assert nothing_kept(service.settings)


def test_an_api_path_like_no_other_points_to_the_docs(service: Service) -> None:
    """Nothing close: no guess, just where every endpoint is listed."""
    with service.device() as client:
        message = error_of(client.get("/v1/zzzzzzzz-qqqq"), 404, "not_found")
    assert "Did you mean" not in message
    assert "/docs" in message


def test_a_plain_request_to_the_websocket_says_it_is_one(service: Service) -> None:
    """GET /v1/events over plain HTTP: told it is a WebSocket, not sent to another endpoint."""
    with service.admin() as client:
        message = error_of(client.get("/v1/events"), 404, "not_found")
    assert "WebSocket" in message and not endpoints_named(message)


def test_a_handlers_own_404_keeps_its_message(service: Service) -> None:
    """An unknown item on a real endpoint still says which file is unknown, not "no endpoint"."""
    with service.device() as client:
        message = error_of(client.get(f"/v1/items/{SHA}"), 404, "unknown_item")
    assert SHA in message and "endpoint" not in message


@pytest.mark.parametrize("how", ["put", "form"])
def test_the_admin_token_on_an_upload_is_recognised(service: Service, how: str) -> None:
    """The admin token sent as a phone's: 401 saying so, and how to make a device token."""
    data = samples.jpeg(seed=71)
    with service.admin() as admin:
        if how == "put":
            response = put_blob(admin, data, name="IMG_0071.JPG")
        else:
            response = post_form(admin, [("IMG_0071.JPG", data)])
    message = error_of(response, 401, "device_token_required")
    assert response.headers["www-authenticate"] == "Bearer"
    assert "admin token" in message and "photo-relay device add" in message
    assert service.admin_token not in response.text
    assert nothing_kept(service.settings)


@pytest.mark.parametrize("path", ["/v1/status", "/v1/devices", "/metrics"])
def test_a_device_token_on_an_admin_endpoint_is_recognised(service: Service, path: str) -> None:
    """A phone's token sent to an admin endpoint: 401 naming the device and the admin token."""
    with service.device() as client:
        response = client.get(path)
    message = error_of(response, 401, "admin_token_required")
    assert "device token of 'phone'" in message
    assert "photo-relay admin-token" in message
    assert service.device_token not in response.text


def test_an_unknown_token_is_not_mistaken_for_either(service: Service) -> None:
    """A token nobody has gets the plain refusals, naming no device."""
    with service.client("prd_not-a-token") as client:
        upload = error_of(put_blob(client, b"x"), 401, "invalid_token")
        admin = error_of(client.get("/v1/status"), 401, "admin_token_required")
    assert "admin token" not in upload
    assert "device token of" not in admin
