"""A backup run: the bundled Shortcut's side of the conversation with the service.

Designed for what Shortcuts can do: JSON in and out, flat values, dates as ISO 8601, one
file per upload, a reply that always says what happened. A run: POST /v1/backup/runs (the
plan), then per page POST .../candidates (which to send, where the next page starts) and
POST .../files (one upload each), and POST .../finish (the sentence to show).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from app.api.deps import AdminDep, DeviceDep, IngestDep, ServicesDep, SettingsDep, UploadBodyDep
from app.api.replies import UploadResult, form_response
from app.errors import UnprocessableContent
from app.intake.form_items import ingest_form
from app.phone.backup import BackupRuns, RunRecord
from app.phone.rules import Candidate, parse_moment

__all__ = ["router"]

# Bounded so a huge number is a 422, not an SQLite overflow (a 500; found by schemathesis).
RunId = Annotated[int, Path(ge=1, le=2**63 - 1)]

router = APIRouter(tags=["shortcuts"])
log = logging.getLogger(__name__)

MAX_CANDIDATES = 1000


def backup_runs(services: ServicesDep) -> BackupRuns:
    return BackupRuns(services.db)


RunsDep = Annotated[BackupRuns, Depends(backup_runs)]


class StartRun(BaseModel):
    kind: Literal["backup", "share"] = Field(
        "backup", description="`backup` (the Wi-Fi automation) or `share` (the share sheet)."
    )
    network: str | None = Field(
        None, max_length=200, description="The Wi-Fi the phone is on, for the run record."
    )


class BackupPlan(BaseModel):
    """What the shortcut should do in this run."""

    run_id: int = Field(description="Use in the paths of this run's other requests.")
    kind: Literal["backup", "share"]
    batch_size: int = Field(description="Photos to look at per page (Find Photos limit).")
    max_batches: int = Field(description="Pages in this run at most; the next run carries on.")
    after: str = Field(
        description="Window start, ISO 8601: look at photos taken after this, oldest first."
    )
    phase: Literal["new", "sweep"]
    overlap_days: float = Field(description="How far before the last stop this run looks again.")


class CandidateIn(BaseModel):
    name: str | None = Field(None, max_length=1024, description="Name as the phone shows it.")
    captured_at: str | None = Field(
        None, max_length=100, description="Capture date, ISO 8601 with offset."
    )
    size: int | float | str | None = Field(
        None, description="Size as the phone reports it (bytes, or any text it uses)."
    )


class CandidatesIn(BaseModel):
    after: str = Field(max_length=100, description="The window start this page was found with.")
    candidates: list[CandidateIn] | str = Field(
        description="The page's photos, oldest first: a JSON array, or (as Shortcuts turns a "
        "list of dictionaries into text) the JSON objects one after another in one string."
    )


class Decisions(BaseModel):
    """Which of the page's photos to upload, keyed by position (1 = first, as Repeat Index)."""

    decisions: dict[str, Literal["send", "safe"]]
    send: int
    already_safe: int
    next_after: str | None = Field(
        description="Window start of the next page; null when this run has nothing more to do."
    )


class FinishIn(BaseModel):
    error: str | None = Field(
        None, max_length=2000, description="What stopped the run, if it did not end cleanly."
    )


class RunOut(BaseModel):
    """A run as recorded; `message` is the sentence the shortcut shows."""

    id: int
    device: str
    kind: str
    network: str | None
    started_at: str
    finished_at: str | None
    state: Literal["running", "finished", "failed", "interrupted"]
    phase: str
    window_start: str | None
    pages: int
    checked: int
    already_safe: int
    sent_new: int
    new_photos: int
    new_videos: int
    error: str | None
    message: str


def run_out(record: RunRecord) -> RunOut:
    return RunOut(**record.__dict__)


def parse_candidates(value: list[CandidateIn] | str) -> list[Candidate]:
    """Candidates from a JSON array, or from JSON objects written one after another."""
    if isinstance(value, list):
        items = value
    else:
        items = []
        decoder = json.JSONDecoder()
        position, text = 0, value
        while position < len(text):
            if text[position] in " \t\r\n,[]":
                position += 1
                continue
            try:
                parsed, position = decoder.raw_decode(text, position)
            except json.JSONDecodeError:
                raise UnprocessableContent(
                    "The candidates are not JSON objects; send a JSON array of "
                    '{"name", "captured_at", "size"} objects.',
                    code="bad_candidates",
                ) from None
            if not isinstance(parsed, dict):
                raise UnprocessableContent(
                    "Each candidate must be a JSON object.", code="bad_candidates"
                )
            items.append(CandidateIn.model_validate(parsed))
    if len(items) > MAX_CANDIDATES:
        raise UnprocessableContent(
            f"At most {MAX_CANDIDATES} candidates per request; lower the batch size.",
            code="too_many_candidates",
        )
    return [
        Candidate(
            name=item.name,
            captured_at=item.captured_at,
            size=None if item.size is None else str(item.size),
        )
        for item in items
    ]


@router.post("/v1/backup/runs", response_model=BackupPlan, status_code=201)
async def start_run(
    body: StartRun, settings: SettingsDep, device: DeviceDep, runs: RunsDep
) -> BackupPlan:
    """Start a run and get its plan: batch size, number of batches, window start.

    A run the same device left unfinished is recorded as interrupted; its progress is kept.
    """
    plan = await asyncio.to_thread(
        runs.start, device, body.kind, body.network, settings.shortcut_overlap_days
    )
    return BackupPlan(
        run_id=plan.run_id,
        kind=body.kind,
        batch_size=settings.shortcut_batch_size,
        max_batches=settings.shortcut_max_batches,
        after=plan.after,
        phase="new",
        overlap_days=settings.shortcut_overlap_days,
    )


@router.post("/v1/backup/runs/{run_id}/candidates", response_model=Decisions)
async def check_candidates(
    run_id: RunId, body: CandidatesIn, settings: SettingsDep, device: DeviceDep, runs: RunsDep
) -> Decisions:
    """Say which photos of a page to upload; the rest this device already sent.

    A photo counts as already sent when this device uploaded one with the same name,
    capture second and reported size. That only spares the bytes; anything not matched
    exactly (or missing a part) is answered `send`, and the content hash decides.
    """
    if parse_moment(body.after) is None:
        raise UnprocessableContent(
            f"'after' must be an ISO 8601 date, like 2024-05-01T21:04:00+02:00; got "
            f"{body.after[:40]!r}.",
            code="bad_window",
        )
    candidates = parse_candidates(body.candidates)
    page = await asyncio.to_thread(
        runs.decide,
        device,
        run_id,
        body.after,
        candidates,
        batch_size=settings.shortcut_batch_size,
        sweep_days=settings.shortcut_sweep_days,
    )
    return Decisions(
        decisions={str(i): d for i, d in enumerate(page.decisions, start=1)},
        send=page.decisions.count("send"),
        already_safe=page.decisions.count("safe"),
        next_after=page.next_after,
    )


@router.post(
    "/v1/backup/runs/{run_id}/files",
    response_model=UploadResult,
    status_code=201,
    responses={200: {"model": UploadResult, "description": "Every file was already here"}},
)
async def upload_run_files(
    run_id: RunId, body: UploadBodyDep, ingest: IngestDep, device: DeviceDep, runs: RunsDep
) -> JSONResponse:
    """Upload files of a run as multipart/form-data (one per request from the shortcut).

    Fields as for POST /v1/uploads (`name`, `captured_at`, `sha256`), plus `size` as the
    phone reports it: with name and capture date it lets later runs skip this photo.
    """
    await asyncio.to_thread(runs.check_open, device, run_id)
    items = await ingest_form(
        ingest, body.content_type, body.declared_size, body.chunks, device, extra_fields=("size",)
    )
    for item in items:
        fields = item.fields
        candidate = Candidate(fields["name"], fields["captured_at"], fields["size"])
        await asyncio.to_thread(
            runs.record_upload,
            device,
            run_id,
            candidate,
            item.receipt.sha256,
            item.receipt.kind,
            item.new,
        )
    return form_response(items)


@router.post("/v1/backup/runs/{run_id}/finish", response_model=RunOut)
async def finish_run(run_id: RunId, body: FinishIn, device: DeviceDep, runs: RunsDep) -> RunOut:
    """End a run. Its `message` says what happened in one sentence, for the notification."""
    record = await asyncio.to_thread(runs.finish, device, run_id, body.error)
    log.info(
        "backup.run_%s run=%d device=%s sent_new=%d already_safe=%d",
        record.state,
        record.id,
        record.device,
        record.sent_new,
        record.already_safe,
    )
    return run_out(record)


@router.get("/v1/backup/runs", dependencies=[AdminDep], response_model=list[RunOut])
async def read_runs(
    runs: RunsDep,
    device: Annotated[str | None, Query(description="Only this device's runs.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> list[RunOut]:
    """Recent runs of every device (admin): when, what was sent, what went wrong."""
    return [run_out(r) for r in await asyncio.to_thread(runs.recent, limit, device)]
