"""A backup run: the bundled Shortcut's side of the conversation with the service.

Designed for what Shortcuts really does (shared/shortcuts-on-iphone.md): JSON in and out,
every key the shortcut reads always present (an error reply too), bodies optional, one
file per upload with its SHA-256. A run: POST /v1/backup/runs (go, and the first page),
per page POST .../candidates (which to send, the next page), per photo to send POST
.../photos/{n}/hash (upload or not) and POST .../photos/{n}/file, and POST .../finish
(the sentence to show). The share sheet uses POST .../files. "Free up space" (by hand)
has its own runs: POST /v1/free-up/runs, per photo of the album POST .../photos/{n} and,
if asked, POST .../photos/{n}/hash, then POST .../review and POST .../finish.
"""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Body, Depends, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

from app.api.deps import (
    AdminDep,
    DeviceDep,
    IngestDep,
    ServicesDep,
    SettingsDep,
    StateDep,
    UploadBodyDep,
)
from app.api.replies import UploadResult, form_response
from app.config import Settings
from app.errors import ApiError, UnprocessableContent
from app.hashing import checked_sha256
from app.intake.form_items import ingest_form
from app.off_loop import off_loop
from app.phone.backup import TOO_LARGE, BackupRuns, Page, RunRecord, WalkSettings
from app.phone.free_up import FreeUpRuns, FreeUpSettings, PhotoFacts
from app.phone.rules import Candidate, size_in_bytes
from app.receipts import ItemState
from app.relay.recheck import safe_to_delete

__all__ = ["router"]

# Bounded so a huge number is a 422, not an SQLite overflow (a 500; found by schemathesis).
RunId = Annotated[int, Path(ge=1, le=2**63 - 1)]
Position = Annotated[int, Path(ge=1, le=100_000)]

router = APIRouter(tags=["shortcuts"])
log = logging.getLogger(__name__)

MAX_CANDIDATES = 10_000

# What an error reply carries besides `error`, so a shortcut reading any key still runs on.
QUIET_KEYS: dict[str, Any] = {
    "go": "no",
    "more": "no",
    "upload": "no",
    "decisions": {},
    "message": "",
    "album": "no",
    "hash": "no",
    "delete": "no",
}


async def backup_runs(services: ServicesDep) -> BackupRuns:
    return BackupRuns(services.db)


RunsDep = Annotated[BackupRuns, Depends(backup_runs)]


async def free_up_runs(services: ServicesDep) -> FreeUpRuns:
    return FreeUpRuns(services.db)


FreeUpDep = Annotated[FreeUpRuns, Depends(free_up_runs)]


def free_up_settings(settings: Settings) -> FreeUpSettings:
    return FreeUpSettings(
        album=settings.shortcut_safe_album,
        days=settings.shortcut_free_up_days,
        favourites=settings.shortcut_free_up_favourites,
    )


def walk_settings(settings: Settings) -> WalkSettings:
    return WalkSettings(
        batch=settings.shortcut_batch_size,
        max_pages=settings.shortcut_max_batches,
        changes_overlap_days=settings.shortcut_overlap_days,
        sweep_days=settings.shortcut_sweep_days,
    )


def shortcut_error(error: ApiError) -> JSONResponse:
    """The service's error, plus every key the shortcut reads (so it stops cleanly)."""
    message = str(error)
    body = {**QUIET_KEYS, "error": {"code": error.code, "message": message}, "message": message}
    return JSONResponse(body, status_code=error.status)


class StartRun(BaseModel):
    kind: Literal["backup", "share"] = Field(
        "backup", description="`backup` (the Wi-Fi automation) or `share` (the share sheet)."
    )
    network: str | None = Field(
        None, max_length=200, description="The Wi-Fi the phone is on ('' when unreadable)."
    )
    home: str | None = Field(
        None, max_length=200, description="The home Wi-Fi's name as typed into the shortcut."
    )


class PageOut(BaseModel):
    more: Literal["yes", "no"] = Field(description="`yes`: look at the page described here.")
    walk: Literal["taken", "changed"] = Field(
        description="Which date Find Photos filters and sorts on: Date Taken or Last Modified Date."
    )
    after: str = Field(
        description="Find photos whose date is after this (a day before the page's first "
        "day, at noon, no zone: the phone reads it in its own zone)."
    )
    take: int = Field(description="Find Photos limit.")


class BackupPlan(PageOut):
    """What the shortcut should do in this run."""

    go: Literal["yes", "away"] = Field(description="`away`: not on the home Wi-Fi; stop quietly.")
    run_id: int = Field(description="Use in the paths of this run's other requests.")
    kind: Literal["backup", "share"]
    album: Literal["yes", "no"] = Field(
        "no", description="`yes`: add the photos collected in this run to the album."
    )
    batch_size: int = Field(description="Photos per page, unless a single day needs more.")
    max_batches: int = Field(description="Pages in this run at most; the next run carries on.")


class CandidateIn(BaseModel):
    name: str | None = Field(None, max_length=1024, description="Name as the phone shows it.")
    taken: str | None = Field(None, max_length=100, description="Date Taken, ISO 8601.")
    modified: str | None = Field(None, max_length=100, description="Last Modified Date, ISO 8601.")
    size: int | float | str | None = Field(
        None, description="File Size as a number of bytes (text such as '2.1 MB' is ignored)."
    )
    kind: str | None = Field(
        None, max_length=500, description="Photo Type (optional): 'Live Photo' for a Live Photo."
    )
    albums: str | list[str] | None = Field(
        None, description="The albums the photo is in (optional; one name a line, or a list)."
    )
    icloud: bool | str | None = Field(
        None,
        description="Whether the original had to be downloaded from iCloud (optional; no "
        "Shortcuts property is known to tell, so the bundled shortcut does not send it).",
    )


def _yes(value: bool | str | None) -> bool | None:
    """Shortcuts writes a boolean as text ('Yes', 'No'); JSON clients send true/false."""
    if value is None or isinstance(value, bool):
        return value
    text = value.strip().casefold()
    if text in ("yes", "true", "1", "on"):
        return True
    if text in ("no", "false", "0", "off", ""):
        return False
    return None


def _albums(value: str | list[str] | None) -> str | None:
    if isinstance(value, list):
        return "\n".join(str(v) for v in value)
    return value


class Decisions(PageOut):
    """Which of the page's photos to send (keyed by position, 1 = first) and the next page.

    `home`: already safe, every delivery verified, not yet in the album: collect it (the
    shortcut adds the collected photos to the album at the end of the run)."""

    decisions: dict[str, Literal["send", "safe", "later", "home"]]
    send: int
    already_safe: int = Field(description="Photos answered `safe` or `home`.")
    later: int = Field(description="Photos that failed before and wait for their next try.")
    home: int = Field(0, description="Photos of this page to add to the album.")
    album: Literal["yes", "no"] = Field(
        "no", description="`yes`: some photo of this run so far is to go into the album."
    )


class OfferIn(BaseModel):
    sha256: str = Field(description="Generate Hash (SHA-256) of the photo, lowercase hex.")


class OfferOut(BaseModel):
    upload: Literal["yes", "no"] = Field(description="`no`: these exact bytes are safe here.")


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
    state: Literal["running", "finished", "failed", "interrupted", "away"]
    phase: str
    window_start: str | None
    pages: int
    checked: int
    already_safe: int
    sent_new: int
    new_photos: int
    new_videos: int
    later: int
    error: str | None
    message: str


def run_out(record: RunRecord) -> RunOut:
    return RunOut(**record.__dict__)


def page_out(page: Page) -> dict[str, Any]:
    return {
        "more": "yes" if page.more else "no",
        "walk": page.walk,
        "after": page.after,
        "take": page.take,
    }


def parse_candidates(value: Any) -> list[Candidate]:
    """Candidates from a JSON array, or from JSON objects written one after another in one
    string (how Shortcuts turns a list of dictionaries into text)."""
    if value is None or value == "":
        raw: list[Any] = []
    elif isinstance(value, list):
        raw = value
    elif isinstance(value, str):
        raw = _objects_in(value)
    else:
        raise UnprocessableContent("'candidates' must be a list.", code="bad_candidates")
    if len(raw) > MAX_CANDIDATES:
        raise UnprocessableContent(
            f"At most {MAX_CANDIDATES} candidates per request.", code="too_many_candidates"
        )
    try:
        items = [CandidateIn.model_validate(item) for item in raw]
    except ValidationError:
        raise UnprocessableContent(
            'Each candidate must be a JSON object with "name", "taken", "modified", "size".',
            code="bad_candidates",
        ) from None
    return [
        Candidate(
            item.name,
            item.taken,
            item.modified,
            size_in_bytes(item.size),
            item.kind,
            _albums(item.albums),
            _yes(item.icloud),
        )
        for item in items
    ]


def _album_name(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 200:
        raise UnprocessableContent("'album' must be the album's name.", code="bad_album")
    return value


def _objects_in(text: str) -> list[Any]:
    items: list[Any] = []
    decoder = json.JSONDecoder()
    position = 0
    while position < len(text):
        if text[position] in " \t\r\n,[]":
            position += 1
            continue
        try:
            parsed, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError:
            raise UnprocessableContent(
                "The candidates are not JSON objects; send a JSON array of "
                '{"name", "taken", "modified", "size"} objects.',
                code="bad_candidates",
            ) from None
        items.append(parsed)
    return items


OptionalBody = Annotated[dict[str, Any] | None, Body()]


ModelT = TypeVar("ModelT", bound=BaseModel)


def _model(model: type[ModelT], body: dict[str, Any] | None) -> ModelT:
    try:
        return model.model_validate(body or {})
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise UnprocessableContent(f"{where}: {first['msg']}", code="bad_request_body") from None


@router.post("/v1/backup/runs", response_model=BackupPlan, status_code=201)
async def start_run(
    settings: SettingsDep, device: DeviceDep, runs: RunsDep, body: OptionalBody = None
) -> JSONResponse:
    """Start a run: `go` (`away` when not on the home Wi-Fi: recorded, nothing to do) and
    the first page. A run the same device left unfinished is recorded as interrupted."""
    try:
        start = _model(StartRun, body)
    except ApiError as error:
        return shortcut_error(error)
    plan = await off_loop(
        runs.start, device, start.kind, start.network, start.home, walk_settings(settings)
    )
    reply = BackupPlan(
        go=plan.go,
        run_id=plan.run_id,
        kind=start.kind,
        batch_size=settings.shortcut_batch_size,
        max_batches=settings.shortcut_max_batches,
        **page_out(plan.page),
    )
    return JSONResponse(reply.model_dump(), status_code=201)


@router.post("/v1/backup/runs/{run_id}/candidates", response_model=Decisions)
async def check_candidates(
    run_id: RunId,
    settings: SettingsDep,
    device: DeviceDep,
    runs: RunsDep,
    body: OptionalBody = None,
) -> JSONResponse:
    """Say which photos of a page to send, and what the next page is.

    With `album` (the album name the shortcut adds verified photos to; older shortcuts
    leave it out and never get "home"), a safe photo whose every delivery is verified and
    that is not in the album yet is "home". "safe" only when this device sent a photo of
    that name and capture second whose stored bytes have exactly this size, and it has not
    changed since; "later" for a photo that failed and waits; anything else "send" (the
    phone hashes it first, so bytes the service already holds are never sent again).
    """
    try:
        candidates = parse_candidates((body or {}).get("candidates"))
        album = _album_name((body or {}).get("album"))
        page = await off_loop(
            runs.decide, device, run_id, candidates, walk_settings(settings), album
        )
    except ApiError as error:
        return shortcut_error(error)
    reply = Decisions(
        decisions={str(i): d for i, d in enumerate(page.decisions, start=1)},
        send=page.decisions.count("send"),
        already_safe=page.decisions.count("safe") + page.decisions.count("home"),
        later=page.decisions.count("later"),
        home=page.decisions.count("home"),
        album="yes" if page.album else "no",
        **page_out(page.page),
    )
    return JSONResponse(reply.model_dump())


@router.post("/v1/backup/runs/{run_id}/photos/{position}/hash", response_model=OfferOut)
async def offer_photo(
    run_id: RunId,
    position: Position,
    device: DeviceDep,
    runs: RunsDep,
    state: StateDep,
    body: OptionalBody = None,
) -> JSONResponse:
    """The phone hashed photo `position` of the page: upload it, or not (bytes already here)."""
    try:
        sha256 = checked_sha256(_model(OfferIn, body).sha256)
        # Another person's copy does not count: this phone's person is told nothing of
        # it, and the upload gives the file a delivery to their own destinations.
        stored = await state.aget_item(sha256, person=device.person_id)
        if stored is not None and stored.state == ItemState.DAMAGED:
            stored = None  # the copy here is damaged: these bytes are wanted again
        upload = await off_loop(
            runs.offer, device, run_id, position, sha256, None if stored is None else stored.size
        )
    except ApiError as error:
        return shortcut_error(error)
    return JSONResponse({"upload": "yes" if upload else "no"})


@router.post(
    "/v1/backup/runs/{run_id}/photos/{position}/file",
    response_model=UploadResult,
    status_code=201,
    responses={200: {"model": UploadResult, "description": "The file was already here"}},
)
async def upload_page_photo(
    run_id: RunId,
    position: Position,
    body: UploadBodyDep,
    ingest: IngestDep,
    device: DeviceDep,
    runs: RunsDep,
) -> JSONResponse:
    """Upload photo `position` of the page (multipart, one file, with its `sha256`).

    The service checks the bytes against the phone's SHA-256. A refusal (too large, no
    room) is recorded against the photo, which waits while the run goes on.
    """
    try:
        await off_loop(runs.check_open, device, run_id, position)
    except ApiError as error:
        return shortcut_error(error)
    try:
        items = await ingest_form(ingest, body, device)
    except ApiError as error:
        reason = TOO_LARGE if error.status == 413 else str(error)
        await off_loop(runs.record_refusal, device, run_id, position, reason)
        return shortcut_error(error)
    for item in items:
        await off_loop(
            runs.record_upload,
            device,
            run_id,
            position,
            item.receipt.sha256,
            item.receipt.size,
            item.receipt.kind,
            item.new,
        )
    return form_response(items)


@router.post(
    "/v1/backup/runs/{run_id}/files",
    response_model=UploadResult,
    status_code=201,
    responses={200: {"model": UploadResult, "description": "Every file was already here"}},
)
async def upload_run_files(
    run_id: RunId, body: UploadBodyDep, ingest: IngestDep, device: DeviceDep, runs: RunsDep
) -> JSONResponse:
    """Upload files of a run as multipart/form-data (the share sheet: one per request).

    Fields as for POST /v1/uploads (`name`, `captured_at`, `sha256`, checked if given).
    """
    await off_loop(runs.check_open, device, run_id)
    items = await ingest_form(ingest, body, device)
    for item in items:
        await off_loop(
            runs.record_upload,
            device,
            run_id,
            None,
            item.receipt.sha256,
            item.receipt.size,
            item.receipt.kind,
            item.new,
        )
    return form_response(items)


@router.post("/v1/backup/runs/{run_id}/finish", response_model=RunOut)
async def finish_run(
    run_id: RunId, device: DeviceDep, runs: RunsDep, body: OptionalBody = None
) -> JSONResponse:
    """End a run (any body, or none). `message` says what happened, failing photos named."""
    try:
        finish = _model(FinishIn, body)
        record = await off_loop(runs.finish, device, run_id, finish.error)
    except ApiError as error:
        return shortcut_error(error)
    log.info(
        "backup.run_%s run=%d device=%s sent_new=%d already_safe=%d",
        record.state,
        record.id,
        record.device,
        record.sent_new,
        record.already_safe,
    )
    return JSONResponse(run_out(record).model_dump())


@router.get("/v1/backup/runs", dependencies=[AdminDep], response_model=list[RunOut])
async def read_runs(
    runs: RunsDep,
    device: Annotated[str | None, Query(description="Only this device's runs.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> list[RunOut]:
    """Recent runs of every device (admin): when, what was sent, what went wrong."""
    return [run_out(r) for r in await off_loop(runs.recent, limit, device)]


class FailingPhoto(BaseModel):
    device: str
    name: str
    taken: str
    attempts: int
    reason: str | None
    next_try_at: str | None


@router.get("/v1/backup/failing", dependencies=[AdminDep], response_model=list[FailingPhoto])
async def read_failing_photos(runs: RunsDep) -> list[FailingPhoto]:
    """Photos a device could not send yet (admin): why, how often, when they are tried again."""
    return [FailingPhoto(**row) for row in await off_loop(runs.failures)]


# -- Free up space (run by hand) ----------------------------------------------------------


class FreeUpPlan(BaseModel):
    """A free-up run: `go`, its id, and the album and age the shortcut looks at."""

    go: Literal["yes"] = Field(description="`yes`: go on (an error reply says `no`).")
    run_id: int = Field(description="Use in the paths of this run's other requests.")
    album: str = Field(description="The album whose photos may be offered.")
    older_than_days: int = Field(description="Only photos taken more than this many days ago.")
    favourites: Literal["yes", "no"] = Field(description="Whether favourites may be offered.")


class FreeUpPhotoIn(BaseModel):
    name: str | None = Field(None, max_length=1024, description="Name as the phone shows it.")
    taken: str | None = Field(None, max_length=100, description="Date Taken, ISO 8601.")
    modified: str | None = Field(None, max_length=100, description="Last Modified Date.")
    size: int | float | str | None = Field(None, description="File Size as bytes.")
    kind: str | None = Field(None, max_length=500, description="Photo Type ('Live Photo').")
    favorite: bool | str | None = Field(None, description="Is Favorite ('Yes' / 'No').")


class FreeUpLook(BaseModel):
    hash: Literal["yes", "no"] = Field(
        description="`yes`: hash the photo and send the hash; `no`: it stays on the phone."
    )


class FreeUpAnswer(BaseModel):
    delete: Literal["yes", "no"] = Field(
        description="`yes`: every delivery of exactly these bytes is verified and the "
        "destination still holds them now; the photo may be deleted from the phone."
    )
    reason: str = Field(description="Why, in plain words.")


class FreeUpReview(BaseModel):
    delete: Literal["yes", "no"] = Field(description="`yes`: delete the collected photos.")
    offered: int = Field(description="How many photos this run offers for deletion.")


class FreeUpReport(BaseModel):
    message: str = Field(description="The run in one sentence, as the shortcut shows it.")


@router.post("/v1/free-up/runs", response_model=FreeUpPlan, status_code=201)
async def start_free_up(
    settings: SettingsDep, device: DeviceDep, runs: FreeUpDep, body: OptionalBody = None
) -> JSONResponse:
    """Start a "Free up space" run (by hand only; any body, or none)."""
    run_id = await off_loop(runs.start, device)
    options = free_up_settings(settings)
    plan = FreeUpPlan(
        go="yes",
        run_id=run_id,
        album=options.album,
        older_than_days=options.days,
        favourites="yes" if options.favourites else "no",
    )
    return JSONResponse(plan.model_dump(), status_code=201)


@router.post("/v1/free-up/runs/{run_id}/photos/{position}", response_model=FreeUpLook)
async def describe_free_up_photo(
    run_id: RunId,
    position: Position,
    settings: SettingsDep,
    device: DeviceDep,
    runs: FreeUpDep,
    body: OptionalBody = None,
) -> JSONResponse:
    """The phone describes photo `position` of the album: hash it, or it stays (a Live
    Photo, an edited photo, a favourite, a recent photo), journalled either way."""
    try:
        photo = _model(FreeUpPhotoIn, body)
        facts = PhotoFacts(
            photo.name,
            photo.taken,
            photo.modified,
            size_in_bytes(photo.size),
            photo.kind,
            bool(_yes(photo.favorite)),
        )
        go_on = await off_loop(
            runs.look, device, run_id, position, facts, free_up_settings(settings)
        )
    except ApiError as error:
        return shortcut_error(error)
    return JSONResponse(FreeUpLook(hash="yes" if go_on else "no").model_dump())


@router.post("/v1/free-up/runs/{run_id}/photos/{position}/hash", response_model=FreeUpAnswer)
async def answer_free_up_photo(
    run_id: RunId,
    position: Position,
    device: DeviceDep,
    runs: FreeUpDep,
    services: ServicesDep,
    body: OptionalBody = None,
) -> JSONResponse:
    """The phone hashed photo `position` again: may it be deleted? Only if these are the
    bytes its backup recorded, every delivery of them is verified, and the destination
    still holds them now (checked during this request)."""
    try:
        sha256 = checked_sha256(_model(OfferIn, body).sha256)
        if not await off_loop(runs.recorded_hash, device, run_id, position, sha256):
            reason: str | None = "unverified"
            why = "these are not the bytes this phone's backup recorded (changed since?)"
        else:
            (answer,) = await safe_to_delete(
                services.db, services.targets, [sha256], person=device.person_id
            )
            reason = None if answer.safe else "missing" if answer.missing else "unverified"
            why = answer.reason
        offered = await off_loop(runs.decide, device, run_id, position, reason, why)
    except ApiError as error:
        return shortcut_error(error)
    return JSONResponse(FreeUpAnswer(delete="yes" if offered else "no", reason=why).model_dump())


@router.post("/v1/free-up/runs/{run_id}/review", response_model=FreeUpReview)
async def review_free_up(
    run_id: RunId, device: DeviceDep, runs: FreeUpDep, body: OptionalBody = None
) -> JSONResponse:
    """Whether the shortcut should ask iOS to delete the collected photos."""
    try:
        offered = await off_loop(runs.review, device, run_id)
    except ApiError as error:
        return shortcut_error(error)
    reply = FreeUpReview(delete="yes" if offered else "no", offered=offered)
    return JSONResponse(reply.model_dump())


@router.post("/v1/free-up/runs/{run_id}/finish", response_model=FreeUpReport)
async def finish_free_up(
    run_id: RunId,
    settings: SettingsDep,
    device: DeviceDep,
    runs: FreeUpDep,
    body: OptionalBody = None,
) -> JSONResponse:
    """After Delete Photos (iOS asked first): the run in one sentence."""
    try:
        message = await off_loop(runs.finish, device, run_id, free_up_settings(settings))
    except ApiError as error:
        return shortcut_error(error)
    return JSONResponse(FreeUpReport(message=message).model_dump())
