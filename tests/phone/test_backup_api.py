"""The service side of the shortcuts: runs, candidate decisions, run records, shortcut files."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx

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


def decide(client: httpx.Client, run: int, after: str, candidates: Any) -> dict[str, Any]:
    reply = client.post(
        f"/v1/backup/runs/{run}/candidates", json={"after": after, "candidates": candidates}
    )
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def test_uploaded_photo_is_answered_safe_by_name_date_and_size(service: Service) -> None:
    """After an upload, the same name + capture second + size is 'safe'; any difference sends."""
    data = samples.heic(TAKEN, seed=1)
    with service.device() as client:
        plan = start(client)
        assert plan["after"].startswith("1970-01-01") and plan["batch_size"] == 20
        sent = upload(
            client,
            plan["run_id"],
            data,
            name="IMG_0001",
            captured_at=TAKEN.isoformat(),
            size=str(len(data)),
        )
        assert sent.status_code == 201 and sent.json()["new"] == 1
        same_instant = TAKEN.astimezone(UTC).isoformat().replace("+00:00", "Z")
        page = decide(
            client,
            plan["run_id"],
            plan["after"],
            [
                {"name": "IMG_0001", "captured_at": same_instant, "size": len(data)},
                {"name": "IMG_0001", "captured_at": TAKEN.isoformat(), "size": len(data) + 1},
                {"name": "IMG_0002", "captured_at": TAKEN.isoformat(), "size": len(data)},
                {"name": "IMG_0001", "captured_at": None, "size": len(data)},
            ],
        )
    assert page["decisions"] == {"1": "safe", "2": "send", "3": "send", "4": "send"}
    assert (page["send"], page["already_safe"], page["next_after"]) == (3, 1, None)


def test_candidates_may_come_as_json_objects_in_one_string(service: Service) -> None:
    """Shortcuts turns a list of dictionaries into text one per line; that is accepted too."""
    lines = "\n".join(
        json.dumps({"name": f"IMG_{n}", "captured_at": TAKEN.isoformat(), "size": "12"})
        for n in range(3)
    )
    with service.device() as client:
        plan = start(client)
        page = decide(client, plan["run_id"], plan["after"], lines)
        assert page["decisions"] == {"1": "send", "2": "send", "3": "send"}
        broken = client.post(
            f"/v1/backup/runs/{plan['run_id']}/candidates",
            json={"after": plan["after"], "candidates": "{not json"},
        )
        assert broken.status_code == 422
        assert broken.json()["error"]["code"] == "bad_candidates"
        bad_date = client.post(
            f"/v1/backup/runs/{plan['run_id']}/candidates",
            json={"after": "yesterday", "candidates": []},
        )
        assert bad_date.status_code == 422 and "ISO 8601" in bad_date.json()["error"]["message"]


def test_the_hint_is_per_device(service: Service) -> None:
    """Another device's photo with the same name, date and size is still sent (when in doubt)."""
    data = samples.jpeg(TAKEN, seed=2)
    facts = {"name": "IMG_0001", "captured_at": TAKEN.isoformat(), "size": str(len(data))}
    with service.device() as phone:
        plan = start(phone)
        assert upload(phone, plan["run_id"], data, **facts).status_code == 201
    with service.client(service.add_device("ipad")) as ipad:
        plan = start(ipad)
        page = decide(ipad, plan["run_id"], plan["after"], [facts])
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


def test_a_cleanly_finished_run_moves_the_window_start(service: Service) -> None:
    """The next plan starts one overlap window before where the last run stopped."""
    newest = TAKEN + timedelta(days=30)
    with service.device() as client:
        plan = start(client)
        page = decide(
            client,
            plan["run_id"],
            plan["after"],
            [{"name": "IMG_0009", "captured_at": newest.isoformat(), "size": 5}],
        )
        assert page["next_after"] is None
        client.post(f"/v1/backup/runs/{plan['run_id']}/finish", json={})
        following = start(client)
    stop = newest - timedelta(seconds=1)
    expected = stop - timedelta(days=service.settings.shortcut_overlap_days)
    assert datetime.fromisoformat(following["after"]) == expected


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
        ("/v1/backup/runs/{run_id}/files", "post"): "UploadResult",
        ("/v1/backup/runs/{run_id}/finish", "post"): "RunOut",
    }
    for (path, method), model in routes.items():
        operation = schema["paths"][path][method]
        assert operation["description"]
        responses = json.dumps(operation["responses"])
        assert f"#/components/schemas/{model}" in responses, (path, responses)
    fields = schema["components"]["schemas"]["BackupPlan"]["properties"]
    assert "description" in fields["after"] and "description" in fields["batch_size"]


def test_a_newer_run_replaces_an_unfinished_one(service: Service) -> None:
    """Starting again marks the old run interrupted; the old one is told it was replaced."""
    with service.device() as client:
        old = start(client)["run_id"]
        start(client)
        late = client.post(
            f"/v1/backup/runs/{old}/candidates",
            json={"after": "2024-01-01T00:00:00Z", "candidates": []},
        )
        assert late.status_code == 409 and "replaced" in late.json()["error"]["message"]
    with service.admin() as admin:
        states = [r["state"] for r in admin.get("/v1/backup/runs").json()]
    assert states == ["running", "interrupted"]
