"""Reading what happened: receipts (GET/HEAD), check, journal, status, health, JSON errors."""

from __future__ import annotations

from datetime import datetime

from tests.conftest import Service
from tests.support import samples
from tests.support.uploads import put_blob, sha256_hex, wait_verified


def test_get_and_head_return_the_receipt_of_a_known_item(service: Service) -> None:
    """GET gives the full receipt, HEAD the same status without a body."""
    data = samples.jpeg(datetime(2024, 4, 5, 6, 7), seed=90)
    sha = sha256_hex(data)
    with service.device() as client:
        put_blob(client, data, name="IMG_0090.JPG", captured_at="2024-04-05T06:07:00+02:00")
        receipt = wait_verified(client, sha)
        head = client.head(f"/v1/items/{sha}")
    assert receipt["sha256"] == sha
    assert receipt["size"] == len(data)
    assert receipt["original_name"] == "IMG_0090.JPG"
    assert receipt["captured_at"] == "2024-04-05T06:07:00+02:00"
    assert receipt["captured_source"] == "client"
    assert receipt["kind"] == "photo"
    assert receipt["device"] == "phone"
    assert receipt["planned_path"] == receipt["remote_path"] == "2024/04/IMG_0090.JPG"
    assert receipt["attempts"] == 1
    assert receipt["last_error"] is None
    assert receipt["verified_at"] >= receipt["received_at"]
    assert head.status_code == 200
    assert head.content == b""


def test_unknown_items_are_404_json_and_bad_hashes_422(service: Service) -> None:
    """An unknown hash is a JSON 404 (HEAD too); a malformed one a 422."""
    with service.device() as client:
        missing = client.get(f"/v1/items/{'a' * 64}")
        missing_head = client.head(f"/v1/items/{'a' * 64}")
        journal = client.get(f"/v1/items/{'a' * 64}/journal")
        malformed = client.get("/v1/items/not-a-hash")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "unknown_item"
    assert missing_head.status_code == 404
    assert journal.status_code == 404
    assert malformed.status_code == 422
    assert malformed.json()["error"]["code"] == "bad_hash"


def test_check_says_which_hashes_are_known_and_which_to_send(service: Service) -> None:
    """POST /v1/items/check lists known hashes with their state and the missing ones once."""
    data = samples.jpeg(seed=91)
    sha, other = sha256_hex(data), "b" * 64
    with service.device() as client:
        put_blob(client, data)
        wait_verified(client, sha)
        response = client.post("/v1/items/check", json={"sha256": [other, sha.upper(), other]})
        empty = client.post("/v1/items/check", json={"sha256": []})
        bad = client.post("/v1/items/check", json={"sha256": ["nope"]})
        not_a_list = client.post("/v1/items/check", json={"hashes": [sha]})
    assert response.status_code == 200, response.text
    assert response.json() == {"known": {sha: "verified"}, "missing": [other]}
    assert empty.json() == {"known": {}, "missing": []}
    assert bad.status_code == 422
    assert not_a_list.status_code == 422
    assert not_a_list.json()["error"]["code"] == "invalid_request"


def test_the_journal_tells_the_story_in_order(service: Service) -> None:
    """Received, then saved and verified, each with a time and a plain-words message."""
    data = samples.jpeg(datetime(2024, 4, 5, 6, 7), seed=92)
    sha = sha256_hex(data)
    with service.device() as client:
        put_blob(client, data, name="IMG_0092.JPG")
        wait_verified(client, sha)
        journal = client.get(f"/v1/items/{sha}/journal").json()
    assert [e["event"] for e in journal] == ["item.received", "relay.verified"]
    assert "IMG_0092.JPG" in journal[0]["message"] and "phone" in journal[0]["message"]
    assert "2024/04/IMG_0092.JPG" in journal[1]["message"]
    assert journal[0]["at"] <= journal[1]["at"]
    assert all(e["sha256"] == sha for e in journal)


def test_healthz_answers_without_a_token(service: Service) -> None:
    """Monitors can check the service without any credentials."""
    with service.client() as client:
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_status_counts_items_per_state_and_spool_use(service: Service) -> None:
    """After two uploads are relayed, status shows 2 verified, the spool and the target."""
    files = [samples.jpeg(seed=93), samples.heic(seed=94)]
    with service.device() as client, service.admin() as admin:
        empty = admin.get("/v1/status").json()
        for data in files:
            put_blob(client, data)
        for data in files:
            wait_verified(client, sha256_hex(data))
        status = admin.get("/v1/status").json()
    assert empty["total_items"] == 0
    assert empty["oldest_pending"] is None and empty["last_error"] is None
    assert status["counts"] == {
        "received": 0,
        "relaying": 0,
        "retry": 0,
        "verified": 2,
        "failed": 0,
        "damaged": 0,
    }
    assert status["total_items"] == 2
    assert status["spool_bytes"] == sum(len(d) for d in files)
    assert status["spool_free_bytes"] > 0
    assert status["oldest_pending"] is None
    assert status["relay"]["state"] == "running"
    assert str(service.library.resolve()) in status["target"]
    assert service.admin_token not in str(status)


def test_unknown_routes_and_wrong_methods_answer_in_json(service: Service) -> None:
    """404 and 405 use the same JSON error shape as every other refusal."""
    with service.device() as client:
        unknown = client.get("/v1/nothing-here")
        wrong = client.delete(f"/v1/blobs/{'a' * 64}")
        get_blob = client.get(f"/v1/blobs/{'a' * 64}")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "not_found"
    for response in (wrong, get_blob):
        assert response.status_code == 405
        assert response.json()["error"]["code"] == "method_not_allowed"
        assert "PUT" in response.headers["allow"]
