"""The service side of the shortcuts: runs, candidate decisions, run records, shortcut files."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from app.api import shortcut_files
from app.api.shortcut_files import signed_name
from app.phone.shortcut import BACKUP_FILE, SHARE_FILE, build_all, shortcut_bytes
from tests.conftest import Service
from tests.support import samples

TAKEN = datetime(2024, 5, 1, 21, 4, 0, tzinfo=timezone(timedelta(hours=2)))


def start(client: httpx.Client, kind: str = "backup") -> dict[str, Any]:
    reply = client.post("/v1/backup/runs", json={"kind": kind, "network": "Home"})
    assert reply.status_code == 201, reply.text
    body: dict[str, Any] = reply.json()
    return body


def upload(client: httpx.Client, run: int, data: bytes, **fields: str) -> httpx.Response:
    return client.post(
        f"/v1/backup/runs/{run}/files", files={"file": ("x.heic", data)}, data=fields
    )


def decide(client: httpx.Client, run: int, candidates: Any) -> dict[str, Any]:
    reply = client.post(f"/v1/backup/runs/{run}/candidates", json={"candidates": candidates})
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def send_page_photo(client: httpx.Client, run: int, position: int, data: bytes) -> str:
    """The phone's two steps for a photo it was told to send: offer the hash, then upload."""
    digest = hashlib.sha256(data).hexdigest()
    offer = client.post(f"/v1/backup/runs/{run}/photos/{position}/hash", json={"sha256": digest})
    assert offer.status_code == 200, offer.text
    if offer.json()["upload"] == "yes":
        sent = client.post(
            f"/v1/backup/runs/{run}/photos/{position}/file",
            files={"file": ("x.heic", data)},
            data={"sha256": digest},
        )
        assert sent.status_code in (200, 201), sent.text
    return str(offer.json()["upload"])


def facts(data: bytes, name: str = "IMG_0001", **changes: Any) -> dict[str, Any]:
    described = {
        "name": name,
        "taken": TAKEN.isoformat(),
        "modified": TAKEN.isoformat(),
        "size": len(data),
    }
    described.update(changes)
    return described


def test_uploaded_photo_is_answered_safe_only_with_the_exact_size(service: Service) -> None:
    """After an upload, name + capture second + bytes is 'safe'; '2.1 MB', another size,
    a later change or no date is 'send'."""
    data = samples.heic(TAKEN, seed=1)
    with service.device() as client:
        plan = start(client)
        assert plan["go"] == "yes" and plan["walk"] == "taken" and plan["batch_size"] == 20
        assert plan["after"] == "1800-01-01T12:00:00" and plan["take"] == 20
        first = decide(client, plan["run_id"], [facts(data)])
        assert first["decisions"] == {"1": "send"}
        assert send_page_photo(client, plan["run_id"], 1, data) == "yes"
        same_instant = TAKEN.astimezone(UTC).isoformat().replace("+00:00", "Z")
        page = decide(
            client,
            plan["run_id"],
            [
                facts(data, taken=same_instant),
                facts(data, size=len(data) + 1),
                facts(data, size="2.1 MB"),
                facts(data, modified=(TAKEN + timedelta(days=3)).isoformat()),
                facts(data, name="IMG_0002"),
                facts(data, taken=None),
            ],
        )
    assert page["decisions"] == {
        "1": "safe",
        "2": "send",
        "3": "send",
        "4": "send",
        "5": "send",
        "6": "send",
    }
    assert (page["send"], page["already_safe"], page["more"]) == (5, 1, "no")


def test_bytes_already_here_are_never_sent_again(service: Service) -> None:
    """A photo to check whose hash the service holds is answered 'upload: no'."""
    data = samples.heic(TAKEN, seed=4)
    with service.device() as client:
        assert upload(client, start(client, "share")["run_id"], data).status_code == 201
        plan = start(client)
        decide(client, plan["run_id"], [facts(data)])
        assert send_page_photo(client, plan["run_id"], 1, data) == "no"
        wrong = client.post(
            f"/v1/backup/runs/{plan['run_id']}/photos/1/file",
            files={"file": ("x.heic", data + b"x")},
            data={"sha256": hashlib.sha256(data).hexdigest()},
        )
        assert wrong.status_code == 422  # the bytes are checked against the phone's hash
        done = client.post(f"/v1/backup/runs/{plan['run_id']}/finish").json()
    assert done["already_safe"] == 1
    assert done["message"].startswith("Nothing new: 1 was already safe. 1 photo was not sent")


def test_candidates_may_come_as_json_objects_in_one_string(service: Service) -> None:
    """Shortcuts turns a list of dictionaries into text one per line; that is accepted too."""
    lines = "\n".join(
        json.dumps({"name": f"IMG_{n}", "taken": TAKEN.isoformat(), "size": 12}) for n in range(3)
    )
    with service.device() as client:
        plan = start(client)
        page = decide(client, plan["run_id"], lines)
        assert page["decisions"] == {"1": "send", "2": "send", "3": "send"}
        broken = client.post(
            f"/v1/backup/runs/{plan['run_id']}/candidates", json={"candidates": "{not json"}
        )
        assert broken.status_code == 422
        body = broken.json()
        assert body["error"]["code"] == "bad_candidates"
        # An error reply still carries every key the shortcut reads.
        assert (body["decisions"], body["more"], body["upload"]) == ({}, "no", "no")


def test_endpoints_accept_an_empty_body(service: Service) -> None:
    """Shortcuts may send a JSON body with no fields as no body at all: still understood."""
    with service.device() as client:
        plan = client.post("/v1/backup/runs")
        assert plan.status_code == 201 and plan.json()["go"] == "yes"
        run = plan.json()["run_id"]
        empty = client.post(f"/v1/backup/runs/{run}/candidates")
        assert empty.status_code == 200 and empty.json()["decisions"] == {}
        done = client.post(f"/v1/backup/runs/{run}/finish")
        assert done.status_code == 200 and done.json()["state"] == "finished"


def test_any_date_is_accepted_or_refused_never_a_500(service: Service) -> None:
    """Issue 17: year 1, year 9999, offsets that overflow, garbage: 200 or 422, and the
    device's later runs still start."""
    odd = [
        "0001-01-01T00:00:00+14:00",
        "0001-01-01",
        "9999-12-31T23:59:59-14:00",
        "yesterday",
        "",
        "2024-02-30T10:00:00Z",
    ]
    with service.device() as client:
        for value in odd:
            plan = start(client)
            page = client.post(
                f"/v1/backup/runs/{plan['run_id']}/candidates",
                json={
                    "candidates": [{"name": "IMG", "taken": value, "modified": value, "size": 1}]
                    * 20
                },
            )
            assert page.status_code in (200, 422), (value, page.text)
            assert client.post(f"/v1/backup/runs/{plan['run_id']}/finish").status_code == 200
        assert client.post("/v1/backup/runs").status_code == 201


def test_a_stored_out_of_range_value_cannot_break_later_runs(service: Service) -> None:
    """Issue 17: a walk stored with a day the service cannot use starts again, no 500."""
    with service.device() as client:
        start(client)
    database = sqlite3.connect(service.settings.database_path)
    with database:
        database.execute(
            "UPDATE backup_walks SET walk = 'taken', anchor = '0001-01-01', "
            "changes_since = '0001-01-01T00:00:00+14:00', last_sweep_at = 'nonsense'"
        )
    for _ in range(2):  # across restarts of the conversation
        with service.device() as client:
            plan = client.post("/v1/backup/runs", json={"kind": "backup"})
            assert plan.status_code == 201, plan.text
            page = decide(client, plan.json()["run_id"], [])
            assert page["more"] in ("yes", "no")
            assert client.post(f"/v1/backup/runs/{plan.json()['run_id']}/finish").status_code == 200


def test_the_hint_is_per_device(service: Service) -> None:
    """Another device's photo with the same name, date and size is still sent (when in doubt)."""
    data = samples.jpeg(TAKEN, seed=2)
    with service.device() as phone:
        plan = start(phone)
        decide(phone, plan["run_id"], [facts(data)])
        assert send_page_photo(phone, plan["run_id"], 1, data) == "yes"
    with service.client(service.add_device("ipad")) as ipad:
        plan = start(ipad)
        page = decide(ipad, plan["run_id"], [facts(data)])
    assert page["decisions"] == {"1": "send"}


def test_runs_belong_to_their_device_and_end_once(service: Service) -> None:
    """Another device cannot use a run (404); a finished run refuses more (409)."""
    with service.device() as phone:
        run = start(phone)["run_id"]
        with service.client(service.add_device("other")) as other:
            stolen = other.post(f"/v1/backup/runs/{run}/finish", json={})
            assert stolen.status_code == 404 and stolen.json()["error"]["code"] == "unknown_run"
        done = phone.post(f"/v1/backup/runs/{run}/finish", json={})
        assert done.status_code == 200
        assert done.json()["message"] == "Nothing new to back up."
        again = phone.post(f"/v1/backup/runs/{run}/finish", json={})
        assert again.status_code == 409 and again.json()["error"]["code"] == "run_over"
        late = upload(phone, run, samples.jpeg(TAKEN))
        assert late.status_code == 409


def test_run_records_show_what_each_device_did(service: Service) -> None:
    """Admins see each run: device, when, what was sent, the error; devices cannot list."""
    with service.device() as phone:
        run = start(phone)["run_id"]
        upload(phone, run, samples.jpeg(TAKEN, seed=3))
        upload(phone, run, samples.jpeg(TAKEN, seed=3))
        failed = phone.post(
            f"/v1/backup/runs/{run}/finish", json={"error": "The spool is full."}
        ).json()
        assert failed["state"] == "failed" and failed["sent_new"] == 1
        assert failed["message"].startswith("Stopped: The spool is full.")
        assert phone.get("/v1/backup/runs").status_code == 401
    with service.admin() as admin:
        runs = admin.get("/v1/backup/runs", params={"device": "phone"}).json()
    assert [(r["device"], r["state"], r["already_safe"], r["network"]) for r in runs] == [
        ("phone", "failed", 1, "Home")
    ]
    journal = sqlite3.connect(service.settings.database_path).execute(
        "SELECT message FROM journal WHERE event = 'backup.run_failed'"
    )
    assert [row[0] for row in journal] == [f"Backup run {run} from phone: {failed['message']}"]


def test_a_cleanly_finished_run_moves_the_walk_on(service: Service) -> None:
    """After a run that listed the whole library, the next one walks recent changes only."""
    newest = TAKEN + timedelta(days=30)
    data = samples.jpeg(newest, seed=9)
    began = datetime.now(UTC)
    with service.device() as client:
        plan = start(client)
        page = decide(client, plan["run_id"], [facts(data, taken=newest.isoformat())])
        assert (page["walk"], page["more"]) == ("changed", "yes")  # photos added meanwhile
        assert send_page_photo(client, plan["run_id"], 1, data) == "yes"
        decide(client, plan["run_id"], [])
        client.post(f"/v1/backup/runs/{plan['run_id']}/finish", json={})
        following = start(client)
    assert following["walk"] == "changed"
    # The overlap, one day more for any zone, and Find Photos' "is after" wants noon of the
    # day before; the walk began between `began` and now (two days only across midnight).
    back = timedelta(days=service.settings.shortcut_overlap_days + 2)
    days = {(moment - back).date() for moment in (began, datetime.now(UTC))}
    assert following["after"] in {f"{day}T12:00:00" for day in days}


def test_shortcut_files_are_served_without_a_token(service: Service) -> None:
    """GET /shortcuts/<file> returns the generated plist as a download; unknown names 404."""
    built = build_all()
    with service.client() as client:
        for filename in (BACKUP_FILE, SHARE_FILE):
            reply = client.get(f"/shortcuts/{filename}")
            assert reply.status_code == 200
            assert reply.headers["content-type"] == "application/x-plist"
            assert filename in reply.headers["content-disposition"]
            assert reply.content == shortcut_bytes(built[filename])
        missing = client.get("/shortcuts/Other.shortcut")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_shortcut"


def test_openapi_documents_the_backup_conversation(service: Service) -> None:
    """Every backup route is in the OpenAPI schema with a response model and a description."""
    with service.client() as client:
        schema = client.get("/openapi.json").json()
    routes = {
        ("/v1/backup/runs", "post"): "BackupPlan",
        ("/v1/backup/runs/{run_id}/candidates", "post"): "Decisions",
        ("/v1/backup/runs/{run_id}/photos/{position}/hash", "post"): "OfferOut",
        ("/v1/backup/runs/{run_id}/photos/{position}/file", "post"): "UploadResult",
        ("/v1/backup/runs/{run_id}/files", "post"): "UploadResult",
        ("/v1/backup/runs/{run_id}/finish", "post"): "RunOut",
        ("/v1/free-up/runs", "post"): "FreeUpPlan",
        ("/v1/free-up/runs/{run_id}/photos/{position}", "post"): "FreeUpLook",
        ("/v1/free-up/runs/{run_id}/photos/{position}/hash", "post"): "FreeUpAnswer",
        ("/v1/free-up/runs/{run_id}/review", "post"): "FreeUpReview",
        ("/v1/free-up/runs/{run_id}/finish", "post"): "FreeUpReport",
        ("/v1/items/safe-to-delete", "post"): "SafeToDeleteResult",
    }
    for (path, method), model in routes.items():
        operation = schema["paths"][path][method]
        assert operation["description"]
        responses = json.dumps(operation["responses"])
        assert f"#/components/schemas/{model}" in responses, (path, responses)
    fields = schema["components"]["schemas"]["BackupPlan"]["properties"]
    assert "description" in fields["after"] and "description" in fields["batch_size"]
    answer = schema["components"]["schemas"]["SafeToDeleteAnswer"]["properties"]
    assert all("description" in answer[name] for name in ("sha256", "safe", "reason"))


def test_a_newer_run_replaces_an_unfinished_one(service: Service) -> None:
    """Starting again marks the old run interrupted; the old one is told it was replaced."""
    with service.device() as client:
        old = start(client)["run_id"]
        start(client)
        late = client.post(f"/v1/backup/runs/{old}/candidates", json={"candidates": []})
        assert late.status_code == 409 and "replaced" in late.json()["error"]["message"]
    with service.admin() as admin:
        states = [r["state"] for r in admin.get("/v1/backup/runs").json()]
    assert states == ["running", "interrupted"]


def test_install_page_links_both_files_and_shows_the_server(service: Service) -> None:
    """GET /shortcuts/ names both files, the import questions, the setup and a QR code."""
    with service.client() as client:
        page = client.get("/shortcuts/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    for needed in (
        quote(BACKUP_FILE),
        quote(SHARE_FILE),
        "Device token",
        "Always Allow",
        "Allow Sharing Large Amounts of Data",
        "Run After Connection Interruption",
        "<svg",
        service.base_url,
    ):
        assert needed in html, needed


def test_a_committed_signed_file_is_offered_and_served(
    service: Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With 'X (signed).shortcut' beside the unsigned file, the page links it and serves it."""
    folder = tmp_path / "shortcuts"
    folder.mkdir()
    (folder / signed_name(BACKUP_FILE)).write_bytes(b"AEA1 signed bytes")
    monkeypatch.setattr(shortcut_files, "SHORTCUTS_DIR", folder)
    with service.client() as client:
        html = client.get("/shortcuts/").text
        assert quote(signed_name(BACKUP_FILE)) in html and quote(SHARE_FILE) in html
        signed = client.get(f"/shortcuts/{signed_name(BACKUP_FILE)}")
        assert signed.status_code == 200 and signed.content == b"AEA1 signed bytes"
        missing = client.get(f"/shortcuts/{signed_name(SHARE_FILE)}")
        assert missing.status_code == 404


def test_a_photo_asked_for_but_never_read_is_walked_again_next_run(service: Service) -> None:
    """The phone stopped while reading a photo (iCloud): the next run revisits its day."""
    with service.device() as client:
        plan = start(client)
        decide(client, plan["run_id"], [facts(b"12345", name="IMG_0042")])
        client.post(f"/v1/backup/runs/{plan['run_id']}/finish")
        following = start(client)
        assert following["walk"] == "changed"  # the walk in progress goes first
        page = decide(client, following["run_id"], [])
    # Then its day (a day's margin for any zone), by Date Taken, not the whole library.
    assert (page["walk"], page["more"]) == ("taken", "yes")
    assert page["after"] == f"{(TAKEN - timedelta(days=2)).date()}T12:00:00"
