"""Property-based bad input: schemathesis generates requests for every operation of the
OpenAPI schema and sends them to the real server, without a token, with a device token and
with the admin token. No answer may be a 5xx; every 4xx JSON answer has our error shape;
and a photo stored before the run is untouched after it. Examples per operation are
bounded (RELIABILITY_FUZZ_EXAMPLES, default 12) to keep the run near a minute.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from app.config import Settings
from app.main import create_app
from tests.conftest import Service, add_device, make_settings
from tests.reliability.harness import Tally, blob, sha256_hex
from tests.support.servers import ThreadedService, wait_for

pytestmark = pytest.mark.reliability

EXAMPLES = int(os.environ.get("RELIABILITY_FUZZ_EXAMPLES", "12"))
SENTINEL = blob(31337, 100_000)
STREAMING = ("/v1/events",)  # a live event stream never ends: not a request/response
tally = Tally("schemathesis")


@pytest.fixture(scope="module")
def fuzzed_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One service for the whole run, holding a verified sentinel photo checked at the end."""
    config = make_settings(tmp_path_factory.mktemp("fuzz"), upload_idle_timeout_seconds=5.0)
    token = add_device(config.data_dir, "phone")
    server = ThreadedService(config)
    server.start()
    service = Service(server, config, token)
    sha = sha256_hex(SENTINEL)
    with service.device() as client:
        assert client.put(f"/v1/blobs/{sha}", content=SENTINEL).status_code == 201
        wait_for(lambda: client.get(f"/v1/items/{sha}").json()["state"] == "verified")
        before = client.get(f"/v1/items/{sha}").json()
    try:
        yield service
        with service.device() as client:
            after = client.get(f"/v1/items/{sha}").json()
        for key in ("state", "remote_path", "received_at", "planned_path", "size"):
            assert after[key] == before[key], f"the fuzz run changed the sentinel's {key}"
        assert (service.library / after["remote_path"]).read_bytes() == SENTINEL
        tally.report()
    finally:
        server.stop()


def load_schema() -> Any:
    """The app's own OpenAPI schema (building the app starts nothing; the lifespan does)."""
    document = create_app(Settings(_env_file=None)).openapi()  # type: ignore[call-arg]
    return schemathesis.openapi.from_dict(document).exclude(path=list(STREAMING))


schema = load_schema()


@schemathesis.check
def error_has_our_shape(ctx: Any, response: Any, case: Any) -> bool | None:
    """A 4xx with a JSON body says {"error": {"code", "message"}}, for a person to act on."""
    if case.method.upper() == "HEAD" or not 400 <= response.status_code < 500:
        return None  # HEAD answers carry no body
    if "json" not in response.headers.get("content-type", [""])[0]:
        return None
    error = response.json().get("error")
    assert isinstance(error, dict) and error.get("code") and error.get("message"), (
        f"{response.status_code} without a clear error: {response.text[:200]}"
    )
    return None


FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)


def send_and_check(case: Any, service: Service, token: str | None) -> None:
    headers = dict(case.headers or {})
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    response = case.call(base_url=service.base_url, headers=headers, timeout=30)
    tally.add("requests")
    tally.add(f"status_{response.status_code // 100}xx")
    case.validate_response(
        response, checks=[schemathesis.checks.not_a_server_error, error_has_our_shape]
    )


@schema.parametrize()
@FUZZ_SETTINGS
def test_generated_requests_without_a_token(case: Any, fuzzed_service: Service) -> None:
    """Generated requests with no token: never a 5xx, 4xx errors in our JSON shape."""
    send_and_check(case, fuzzed_service, None)


@schema.parametrize()
@FUZZ_SETTINGS
def test_generated_requests_with_a_device_token(case: Any, fuzzed_service: Service) -> None:
    """Generated requests as a device: never a 5xx, 4xx errors in our JSON shape."""
    send_and_check(case, fuzzed_service, fuzzed_service.device_token)


@schema.parametrize()
@FUZZ_SETTINGS
def test_generated_requests_with_the_admin_token(case: Any, fuzzed_service: Service) -> None:
    """Generated requests as the admin: never a 5xx, 4xx errors in our JSON shape."""
    send_and_check(case, fuzzed_service, fuzzed_service.admin_token)
