"""Ingest: one path from bytes on the wire to a recorded, durable item.

`take_in` is an upload's whole way: the body is hashed and written to a spool temp file,
fsynced, checked, linked to its content address, its metadata read, its destination
planned and the item recorded — in that order, so a 2xx reply is only ever sent for a file
that is on disk and in the database. Content we already hold is hashed all the same; when
its home copy is damaged, it replaces it.

A body straight from the socket (`UploadBody.claim`) takes all of that in its reader
thread: one thread hop per upload. A body through ASGI takes the async twins: `receive`
streams chunks into the writer (hashing and writing in a worker thread while the next chunk
arrives), then `commit`; each step leaves the event loop in one hop (`app.off_loop`), not
one per file operation.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from app import crashpoints
from app.clock import now, spoken
from app.config import IntakeSettings
from app.errors import PayloadTooLarge, UnprocessableContent
from app.hashing import CHUNK_SIZE
from app.intake.upload_body import Buffer, UploadBody
from app.naming import remote_path, safe_name
from app.off_loop import off_loop
from app.receipts import CAPTURE_NOTES, PENDING_STATES, ItemState, Receipt
from app.store.retention import drop_repeat_copy
from app.store.spool import Spool, SpoolWriter
from app.store.state import Device, NewItem, State

__all__ = ["ClientMeta", "Ingest", "capture_note", "parse_captured_at", "too_large"]


@dataclass(frozen=True)
class ClientMeta:
    """What the client told us about a file; each part optional."""

    name: str | None = None
    captured_at: datetime | None = None
    claimed_sha256: str | None = None
    # Used only when the bytes carry no capture time (the file's mtime, for an import).
    fallback_captured_at: datetime | None = None


@dataclass(frozen=True)
class Sealed:
    """A received file, fsynced and hashed, that passed every check."""

    writer: SpoolWriter
    sha256: str
    meta: ClientMeta


# The widest offset any zone uses (Kiribati, +14:00; Baker Island, -12:00, within it).
MAX_OFFSET = timedelta(hours=14)
# Capture instants are kept a day inside datetime's range, so converting one to any zone
# (the status page, the folder for a video, the copy's mtime) can never overflow.
EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, tzinfo=UTC)
_LEAP_SECOND = re.compile(r"(T\d\d:?\d\d:?)60")


def date_problem(value: datetime) -> str | None:
    """Why `value` cannot be a capture time, or None if it can."""
    offset = value.utcoffset()
    if offset is not None and abs(offset) > MAX_OFFSET:
        return "its UTC offset is beyond ±14:00, which no time zone uses"
    if not EARLIEST <= value.replace(tzinfo=value.tzinfo or UTC) <= LATEST:
        return "it is outside 2 Jan of the year 1 to 30 Dec 9999, the dates every zone can show"
    return None


def parse_captured_at(value: str | None) -> datetime | None:
    """An ISO 8601 date from a client, or a 422 saying what we expected."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        # A leap second (23:59:60) is a real clock reading; Python has no 60th second.
        parsed = datetime.fromisoformat(_LEAP_SECOND.sub(r"\g<1>59", text, count=1))
    except ValueError:
        raise UnprocessableContent(
            f"The capture time {value[:40]!r} is not an ISO 8601 date; send it like "
            "2024-05-01T21:04:00+02:00.",
            code="bad_capture_time",
        ) from None
    problem = date_problem(parsed)
    if problem is not None:
        raise UnprocessableContent(
            f"The capture time {value[:40]!r} cannot be used: {problem}. Send it like "
            "2024-05-01T21:04:00+02:00.",
            code="bad_capture_time",
        )
    return parsed


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"This file is larger than the limit of {limit} bytes; nothing was stored. Raise "
        "PHOTO_RELAY_MAX_UPLOAD_BYTES if files this large should be accepted."
    )


class PendingWrite:
    """Writes gathered pieces through a worker thread, one batch in flight while the next fills.

    The received pieces are handed over as they are (a list, written with one `writev`):
    gathering them into one buffer cost a quarter of the event loop's time (py-spy --gil,
    4 MiB photos), because the buffer was copied each time it grew.
    """

    def __init__(self, writer: SpoolWriter, limit: int) -> None:
        self.writer = writer
        self.limit = limit
        self.size = 0
        self._pieces: list[bytes] = []
        self._gathered = 0
        self._in_flight: asyncio.Future[None] | None = None

    async def feed(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            raise too_large(self.limit)
        self._pieces.append(chunk)
        self._gathered += len(chunk)
        if self._gathered >= CHUNK_SIZE or len(self._pieces) >= MAX_PIECES:
            await self._flush()

    async def _flush(self) -> None:
        if self._in_flight is not None:
            await self._in_flight
            self._in_flight = None
        if self._pieces:
            pieces, self._pieces, self._gathered = self._pieces, [], 0
            self._in_flight = asyncio.ensure_future(off_loop(self.writer.write_pieces, pieces))

    async def drain(self) -> SpoolWriter:
        """Write what is left; the file is then complete but not yet fsynced."""
        await self._flush()
        await self._flush()
        return self.writer

    async def abort(self) -> None:
        if self._in_flight is not None:
            await asyncio.gather(self._in_flight, return_exceptions=True)
        await off_loop(self.writer.discard)


# A client sending tiny pieces gets them written every MAX_PIECES (one writev holds at most
# 1024), so their count, and the memory they hold, stays bounded.
MAX_PIECES = 512

# How often a body of unknown length re-checks the spool's free-space reserve.
RESERVE_CHECK_BYTES = 4 * 1024 * 1024


class Ingest:
    """Receives files for the API and the CLI's import alike."""

    def __init__(
        self, settings: IntakeSettings, spool: Spool, state: State, on_new: Callable[[], None]
    ) -> None:
        self.settings = settings
        self.spool = spool
        self.state = state
        self.on_new = on_new
        self._zone = ZoneInfo(settings.timezone) if settings.timezone else None

    def check_size(self, declared_size: int | None, *, framing: int = 0) -> None:
        """Refuse at once a body declared over the size limit.

        `framing` is what a body may carry besides the file (a form's boundaries and text
        fields), so that a file of exactly the limit still fits in a form.
        """
        limit = self.settings.max_upload_bytes
        if declared_size is not None and declared_size > limit + framing:
            raise too_large(limit)

    async def check_room(self, declared_size: int | None, *, framing: int = 0) -> None:
        """Refuse early what cannot fit: over the size limit, or more than the disk has."""
        self.check_size(declared_size, framing=framing)
        await self.spool.aensure_room(declared_size or 0)

    async def take_in(
        self, body: UploadBody, meta: ClientMeta, device: Device | None
    ) -> tuple[Receipt, bool]:
        """Receive, seal and store one file sent as a whole body; returns (receipt, is_new)."""
        self.check_size(body.declared_size)
        claim = body.claim()
        if claim is None:
            writer = await self.receive(body.chunks, declared_size=body.declared_size)
            return await self.commit(writer, meta, device)

        def take(pieces: Iterator[Buffer]) -> tuple[Sealed, Receipt, bool]:
            self.spool.ensure_room(body.declared_size or 0)
            sealed = self._seal_pieces(pieces, meta)
            return sealed, *self.link_and_record(sealed, device)

        sealed, receipt, created = await body.read(claim, take)
        return await self.after_store(sealed, receipt, created)

    async def receive(
        self, chunks: AsyncIterator[bytes], *, declared_size: int | None = None
    ) -> SpoolWriter:
        """Stream `chunks` into a new spool temp file; the caller commits or discards it."""
        await self.check_room(declared_size)
        writer = await self.spool.aopen_writer()
        pending = PendingWrite(writer, self.settings.max_upload_bytes)
        unchecked = 0
        try:
            async for chunk in chunks:
                await pending.feed(chunk)
                if pending.size == len(chunk):
                    crashpoints.reached("ingest.body_started")
                unchecked += len(chunk)
                if declared_size is None and unchecked >= RESERVE_CHECK_BYTES:
                    # No length was declared, so the reserve could not be checked up front.
                    unchecked = 0
                    await self.spool.aensure_room(0)
            return await pending.drain()
        except BaseException:
            await pending.abort()
            raise

    async def seal(self, writer: SpoolWriter, meta: ClientMeta) -> Sealed:
        """Fsync and hash a received file, and refuse it if it is empty or not as claimed."""
        return await off_loop(self.seal_now, writer, meta)

    def seal_now(self, writer: SpoolWriter, meta: ClientMeta) -> Sealed:
        """`seal`, blocking (in a worker thread)."""
        return Sealed(writer, seal_file(writer, meta.claimed_sha256), meta)

    async def store(self, sealed: Sealed, device: Device | None) -> tuple[Receipt, bool]:
        """Link a sealed file to its content address and record it; (receipt, is_new)."""
        receipt, created = await off_loop(self.link_and_record, sealed, device)
        return await self.after_store(sealed, receipt, created)

    async def after_store(
        self, sealed: Sealed, receipt: Receipt, created: bool
    ) -> tuple[Receipt, bool]:
        """What follows `link_and_record` on the loop: wake the relay, drop a repeat copy."""
        if created or receipt.state in PENDING_STATES:
            self.on_new()  # new, or a new person's deliveries of known content
        if not created:
            await drop_repeat_copy(self.state, self.spool, sealed.sha256)
        return receipt, created

    async def commit(
        self, writer: SpoolWriter, meta: ClientMeta, device: Device | None
    ) -> tuple[Receipt, bool]:
        """Seal and store one received file; returns (receipt, is_new)."""
        return await self.store(await self.seal(writer, meta), device)

    # -- the blocking steps, each run in one hop off the event loop ----------------------

    def _seal_pieces(self, pieces: Iterator[Buffer], meta: ClientMeta) -> Sealed:
        """Write `pieces` into a new spool temp file, then seal it (the reader thread's part)."""
        writer = self.spool.open_writer()
        limit = self.settings.max_upload_bytes
        try:
            for piece in pieces:
                if writer.size + len(piece) > limit:
                    raise too_large(limit)
                writer.write(piece)
                if writer.size == len(piece):
                    crashpoints.reached("ingest.body_started")
        except BaseException:
            writer.discard()
            raise
        return self.seal_now(writer, meta)

    def link_and_record(self, sealed: Sealed, device: Device | None) -> tuple[Receipt, bool]:
        """`store`'s blocking part: link the file to its content address and record it."""
        sha256, size, meta = sealed.sha256, sealed.writer.size, sealed.meta
        existing = self.state.get_item(sha256)
        # The bytes were just hashed, so they may replace a home copy that is damaged.
        damage = self._home_copy_damage(existing) if existing else None
        stored = self.spool.commit(sealed.writer, sha256, replace=damage is not None)
        crashpoints.reached("ingest.after_link")
        problem: str | None = None
        if existing:
            item = existing_item(existing, size, meta, device)
        else:
            item, problem = self._describe(stored, sha256, size, meta, device)
        receipt, created = self.state.record_received(item)
        crashpoints.reached("ingest.after_record")
        if created and problem is not None:
            # The receipt says "fallback"; its journal says why the bytes gave no date.
            self.state.journal(
                "intake.capture_time_unreadable",
                f"The capture time was not taken from the file: {problem}.",
                sha256=sha256,
            )
        if damage is not None and not created:
            receipt = self.state.mark_repaired(sha256, damage) or receipt
            self.on_new()  # the relay may take it up again now
        return receipt, created

    def _home_copy_damage(self, existing: Receipt) -> str | None:
        """What is wrong with the copy kept of `existing`, or None if nothing is known to be.

        Marked damaged by the relay, or found missing or of the wrong size here (a cheap
        look, no re-read). A copy removed by retention after verification is not damage.
        """
        if existing.state == ItemState.DAMAGED:
            return existing.last_error or "The copy kept here was damaged."
        if self.state.spool_removed_at(existing.sha256) is not None:
            return None
        return self.spool.copy_problem(existing.sha256, existing.size)

    def _describe(
        self, stored: Path, sha256: str, size: int, meta: ClientMeta, device: Device | None
    ) -> tuple[NewItem, str | None]:
        """Read the file's metadata and plan where it goes; also why its date was not used."""
        # Imported on first use: Pillow and pillow-heif were a third of the start-up time.
        from app.intake.media import probe

        info = probe(stored)
        problem = info.problem
        if info.captured_at is not None and (unusable := date_problem(info.captured_at)):
            shown = spoken(info.captured_at.replace(tzinfo=None))  # as its clock showed it
            problem = f"the date in its metadata, {shown}, {unusable}"
        if meta.captured_at is not None:
            captured, source = meta.captured_at, "client"
        elif info.captured_at is not None and problem is None:
            captured, source = info.captured_at, info.captured_source or "exif"
        else:
            captured, source = meta.fallback_captured_at or now(), "fallback"
        note = capture_note(source, problem, from_mtime=meta.fallback_captured_at is not None)
        # Folders follow the wall clock where the photo was taken; only values that are
        # really UTC (videos, the fallback) are moved to the configured zone first.
        if source in ("quicktime", "fallback"):
            local = captured.astimezone(self._zone).replace(tzinfo=None)
        else:
            local = captured.replace(tzinfo=None)
        fallback_stem = sha256[:8]
        original = meta.name or f"{fallback_stem}.{info.extension or 'bin'}"
        name = safe_name(original, fallback_stem=fallback_stem, extension=info.extension)

        def path_for(template: str) -> str:  # also for a destination with its own template
            return remote_path(
                template,
                captured_local=local,
                name=name,
                sha256=sha256,
                kind=info.kind,
                device=device.name if device else "import",
            )

        item = NewItem(
            sha256=sha256,
            size=size,
            original_name=original[:1024],
            kind=info.kind,
            captured_at=captured.isoformat(),
            captured_local=local.isoformat(),
            captured_source=source,
            captured_note=note,
            planned_path=path_for(self.settings.path_template),
            device=device,
            path_for=path_for,
        )
        return item, (problem if source == "fallback" else None)


def capture_note(source: str, problem: str | None, *, from_mtime: bool) -> str:
    """Where the capture time came from, in words; for a fallback, also why."""
    if source != "fallback":
        return CAPTURE_NOTES[source]
    origin = "The file's modified time" if from_mtime else "The time the file arrived here"
    return f"{origin}, because {problem or 'the file carries no capture time'}."


def seal_file(writer: SpoolWriter, claimed_sha256: str | None) -> str:
    """Fsync and hash `writer`'s file; discard it and refuse it if empty or not as claimed."""
    try:
        sha256 = writer.finish()
    except BaseException:
        writer.discard()
        raise
    crashpoints.reached("ingest.after_fsync")
    if writer.size == 0:
        writer.discard()
        raise UnprocessableContent(
            "The file is empty (0 bytes); nothing was stored. Check that the Shortcut "
            "or command sends the file itself.",
            code="empty_file",
        )
    if claimed_sha256 is not None and claimed_sha256 != sha256:
        writer.discard()
        raise UnprocessableContent(
            f"The file's SHA-256 is {sha256}, not {claimed_sha256} as claimed; the "
            "upload was probably damaged on the way. Nothing was stored; send it again.",
            code="hash_mismatch",
        )
    return sha256


def existing_item(existing: Receipt, size: int, meta: ClientMeta, device: Device | None) -> NewItem:
    """A duplicate: the record stays as first received, only the journal notes the repeat."""
    return NewItem(
        sha256=existing.sha256,
        size=size,
        original_name=meta.name or existing.original_name,
        kind=existing.kind,
        captured_at=existing.captured_at,
        captured_local=existing.captured_at,
        captured_source=existing.captured_source,
        captured_note=existing.captured_note,
        planned_path=existing.planned_path,
        device=device,
        path_for=lambda template: remote_path(
            template,
            captured_local=datetime.fromisoformat(existing.captured_at).replace(tzinfo=None),
            name=existing.planned_path.rpartition("/")[2],
            sha256=existing.sha256,
            kind=existing.kind,
            device=device.name if device else "import",
        ),
    )
