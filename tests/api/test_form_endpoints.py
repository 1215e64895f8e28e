"""The two form endpoints, POST /v1/uploads and a backup run's files, answer forms alike.

Both take the one form path (`app.intake.form_items`); each case is sent to a fresh service
through each endpoint in the same order, and the answers must match: status, error code,
and what every receipt says. (They once drifted: the run's files ignored a wrong `sha256`
and refused a file of exactly the size limit.)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx

from tests.conftest import Service
from tests.support import samples
from tests.support.uploads import sha256_hex

LIMIT = 64 * 1024
PHOTO = samples.jpeg(datetime(2024, 3, 4, 5, 6), seed=40)
OTHER = samples.jpeg(datetime(2024, 3, 4, 5, 7), seed=41)
AT_LIMIT = b"\x00" * (LIMIT - 1) + b"\x01"

Form = tuple[list[tuple[str, bytes]], dict[str, list[str]]]
CASES: list[tuple[str, Form]] = [
    ("one new photo", ([("IMG_0040.JPG", PHOTO)], {})),
    ("the same photo again", ([("IMG_0040.JPG", PHOTO)], {})),
    ("its right sha256", ([("IMG_0041.JPG", OTHER)], {"sha256": [sha256_hex(OTHER).upper()]})),
    ("a wrong sha256", ([("x.jpg", AT_LIMIT[:10])], {"sha256": [sha256_hex(PHOTO)]})),
    ("a sha256 that is no hash", ([("x.jpg", AT_LIMIT[:11])], {"sha256": ["not-a-hash"]})),
    ("a file of exactly the limit", ([("limit.bin", AT_LIMIT)], {})),
    ("a file one byte over", ([("over.bin", AT_LIMIT + b"!")], {})),
    ("an empty file", ([("empty.jpg", b"")], {})),
    ("two files, one name", ([("a", b"a" * 9), ("b", b"b" * 9)], {"name": ["only-one"]})),
    ("a bad date", ([("d.jpg", b"d" * 9)], {"captured_at": ["yesterday"]})),
    ("name and date", ([("e", b"e" * 9)], {"name": ["E.JPG"], "captured_at": ["2020-01-02"]})),
]


def answer(response: httpx.Response) -> dict[str, Any]:
    """What a person or a shortcut can tell from the answer (no times)."""
    body = response.json()
    if "error" in body:
        return {"status": response.status_code, "error": body["error"]["code"]}
    receipts = [
        {
            **{key: item[key] for key in ("sha256", "new", "original_name", "kind", "size")},
            "captured_source": item["captured_source"],
            # A file with no date of its own is dated when it arrives: that differs by a moment.
            "captured_at": None if item["captured_source"] == "fallback" else item["captured_at"],
        }
        for item in body["items"]
    ]
    return {"status": response.status_code, "new": body["new"], "items": receipts}


def send_all(client: httpx.Client, path: str) -> list[dict[str, Any]]:
    answers = []
    for _, (files, fields) in CASES:
        parts = [("file", (name, data, "application/octet-stream")) for name, data in files]
        answers.append(answer(client.post(path, files=parts, data=fields)))
    return answers


def test_both_form_endpoints_answer_the_same_forms_the_same_way(
    start_service: Callable[..., Service], tmp_path: Any
) -> None:
    """Every case gets the same status, error code and receipts from both endpoints."""
    plain = start_service(data_dir=tmp_path / "plain", max_upload_bytes=LIMIT)
    backup = start_service(data_dir=tmp_path / "backup", max_upload_bytes=LIMIT)
    with plain.device() as client:
        by_uploads = send_all(client, "/v1/uploads")
    with backup.device() as client:
        run = client.post("/v1/backup/runs", json={"kind": "share"}).json()["run_id"]
        by_run = send_all(client, f"/v1/backup/runs/{run}/files")
    for (case, _), one, other in zip(CASES, by_uploads, by_run, strict=True):
        assert one == other, case
    statuses = [one["status"] for one in by_uploads]
    assert statuses == [201, 200, 201, 422, 422, 201, 413, 422, 400, 422, 201]
