"""Remembered device tokens (issue 20) are as strict as a database read per request.

The service keeps whose token is whose while no device row changes; these pin that a
change made by another process (the `photo-relay` command, a hand-run SQL update) counts
from the very next request, and that unknown tokens are never kept.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import httpx

from app.store.token_cache import TokenCache
from app.tokens import new_token
from tests.cli.test_cli import photo_relay
from tests.conftest import Service
from tests.support import samples
from tests.support.uploads import put_blob, sha256_hex

ITEM = f"/v1/items/{'a' * 64}"


def tokens(service: Service) -> TokenCache:
    cache: TokenCache = service.server.app_services.tokens
    return cache


def answer(service: Service, token: str) -> int:
    with service.client(token) as client:
        return client.get(ITEM).status_code


def remembered(service: Service, token: str) -> None:
    """Use the token twice, so the second answer came from the cache (it holds one)."""
    assert answer(service, token) == 404
    assert answer(service, token) == 404
    assert len(tokens(service)) == 1


def run_sql(service: Service, sql: str, *params: object) -> None:
    """Change the database from another process, as a person with `sqlite3` would."""
    script = (
        "import sqlite3, sys\n"
        "conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)\n"
        "conn.execute(sys.argv[2], tuple(sys.argv[3:]))\n"
        "conn.close()\n"
    )
    database = str(service.settings.database_path)
    command = [sys.executable, "-c", script, database, sql, *map(str, params)]
    subprocess.run(command, check=True, timeout=60)


def test_a_token_revoked_by_the_command_is_refused_on_the_very_next_request(
    service: Service,
) -> None:
    """`photo-relay device revoke` in another process: the remembered token's next request
    is refused, without waiting for anything to expire."""
    remembered(service, service.device_token)
    revoked = photo_relay("device", "revoke", "phone", data_dir=service.settings.data_dir)
    assert revoked.returncode == 0, revoked.stderr
    assert answer(service, service.device_token) == 401
    assert len(tokens(service)) == 0


def test_a_rotated_token_works_at_once_and_the_old_one_fails(service: Service) -> None:
    """`photo-relay device rotate` in another process: the new token is taken on its first
    request, the remembered old one refused on its next."""
    remembered(service, service.device_token)
    rotated = photo_relay("device", "rotate", "phone", data_dir=service.settings.data_dir)
    assert rotated.returncode == 0, rotated.stderr
    assert answer(service, service.device_token) == 401
    assert answer(service, rotated.stdout.strip()) == 404
    assert answer(service, service.device_token) == 401


def test_many_unknown_tokens_are_not_kept(service: Service) -> None:
    """Random tokens are each refused and never remembered: the cache holds the one
    device that was used, however many strangers knock."""
    remembered(service, service.device_token)
    with httpx.Client(base_url=service.base_url, timeout=60) as client:
        for _ in range(300):
            headers = {"Authorization": f"Bearer {new_token()}"}
            assert client.get(ITEM, headers=headers).status_code == 401
    assert len(tokens(service)) == 1
    assert answer(service, service.device_token) == 404


def test_a_renamed_device_is_named_by_its_new_name_at_once(
    start_service: Callable[..., Service],
) -> None:
    """A device renamed in the database by another process: its next upload is filed
    under the new name, and a refusal names it so."""
    service = start_service(path_template="{device}/{name}")
    with service.device() as phone:
        first = put_blob(phone, samples.jpeg(seed=60), name="IMG_0060.JPG")
        assert first.json()["planned_path"] == "phone/IMG_0060.JPG"
        remembered(service, service.device_token)
        run_sql(service, "UPDATE devices SET name = ? WHERE name = ?", "kitchen-ipad", "phone")
        second = put_blob(phone, samples.jpeg(seed=61), name="IMG_0061.JPG")
        assert second.json()["planned_path"] == "kitchen-ipad/IMG_0061.JPG"
        refusal = phone.get("/v1/status").json()["error"]["message"]
        assert "device token of 'kitchen-ipad'" in refusal


def test_a_device_moved_to_another_person_sees_only_their_photos_at_once(
    service: Service,
) -> None:
    """A device given to another person (`person add`, then its row changed by another
    process): at its next request it no longer reads the photos its old person sent."""
    data = samples.jpeg(seed=62)
    added = photo_relay("person", "add", "anna", data_dir=service.settings.data_dir)
    assert added.returncode == 0, added.stderr
    with service.device() as phone:
        assert put_blob(phone, data).status_code == 201
        assert phone.get(f"/v1/items/{sha256_hex(data)}").status_code == 200
        assert len(tokens(service)) == 1
        run_sql(
            service,
            "UPDATE devices SET person_id = (SELECT id FROM people WHERE name = ?) WHERE name = ?",
            "anna",
            "phone",
        )
        assert phone.get(f"/v1/items/{sha256_hex(data)}").status_code == 404
