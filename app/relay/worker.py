"""The relay worker: claims received items, copies each to the target, verifies, marks.

One loop, a few copies at a time (never two to the same destination path). Every outcome
is written to the journal: verified, name taken (with the alternative chosen), retry with
back-off, failed when a person must act, or the whole relay paused when the destination
refuses our credentials or is full — retrying then would only make things worse.

An outage only delays: a destination that does not answer (`TargetError.transient`) never
makes an item `failed`. The relay then stops sending files and asks the destination one
small question every `probe_seconds`; when it answers, every waiting item is due at once.
A transition that cannot be recorded (the database's disk full, the database locked) is
recorded again by the loop until it sticks. Now and then the loop also removes home
copies whose retention period after verification is over.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from app import crashpoints
from app.clock import duration_words, now
from app.config import RelaySettings
from app.errors import (
    HomeCopyDamaged,
    NameRefused,
    NameTaken,
    PhotoRelayError,
    TargetAuthFailed,
    TargetError,
    TargetFull,
    TargetMaintenance,
    TargetRejected,
    TargetUnavailable,
    VerificationFailed,
)
from app.naming import NameRules, alternative_paths, conform_path, name_key, with_characters
from app.progress import ProgressBoard
from app.receipts import Receipt
from app.relay.folder_listings import FolderListings
from app.relay.home_copy import home_copy_checked
from app.store.deliveries import DEFAULT_DESTINATION
from app.store.retention import SWEEP_INTERVAL, remove_spool_copy, sweep_spool
from app.store.spool import Spool
from app.store.state import State, outage_events
from app.targets.base import NamingTarget, Target, Verification

__all__ = ["Outage", "Relay", "RelayState", "RelayStatus", "retry_delay"]

log = logging.getLogger(__name__)

# How long a pause for a full destination lasts before the relay looks again.
FULL_RECHECK = timedelta(minutes=5)
# How long a maintenance pause lasts when the server does not say (Retry-After).
MAINTENANCE_RECHECK = timedelta(minutes=1)
# How often an idle or paused relay looks for work queued by another process
# (`photo-relay retry` from the command line): one small database read.
POLL_SECONDS = 2.0


def retry_delay(attempt: int, *, base: float, cap: float) -> float:
    """Exponential back-off with jitter: about base·2^(attempt-1), at most `cap` seconds."""
    ceiling = min(cap, base * 2 ** max(attempt - 1, 0))
    return random.uniform(ceiling / 2, ceiling)


def capture_instant(captured_at: str, captured_local: datetime, zone: ZoneInfo | None) -> datetime:
    """When the file was taken, as an instant (for the copy's modification time).

    A capture time with an offset (EXIF with its offset, QuickTime, most clients) is exact;
    the wall-clock `captured_local` would be off by that offset. A bare wall-clock time is
    read in the configured zone, or this machine's.
    """
    taken = datetime.fromisoformat(captured_at)
    if taken.tzinfo is not None:
        return taken
    return captured_local.replace(tzinfo=zone) if zone else captured_local


class RelayState(StrEnum):
    """What the relay as a whole is doing (`/v1/status`'s `relay.state`, the live feed)."""

    STARTING = "starting"  # the service is starting; the loop has not begun
    RUNNING = "running"
    PAUSED = "paused"  # see `RelayStatus.reason`; `paused_until` None: until resumed by hand
    WAITING = "waiting"  # the destination does not answer (since `down_since`); probing
    STOPPED = "stopped"  # the loop ended (shutdown)


@dataclass
class RelayStatus:
    state: RelayState = RelayState.STARTING
    reason: str | None = None
    paused_until: datetime | None = None
    down_since: datetime | None = None


@dataclass
class Outage:
    """The destination stopped answering: since when, the last reason, when to ask again.

    `confirmed` once a probe failed too: then it is the destination, not one file's bad
    luck, and no file is sent until a probe gets an answer.
    """

    since: datetime
    reason: str
    confirmed: bool = False
    next_probe: datetime = field(default_factory=now)
    probes: int = 0


class Relay:
    """Moves items from the spool to the target until each copy is verified."""

    def __init__(
        self,
        settings: RelaySettings,
        state: State,
        spool: Spool,
        target: Target,
        *,
        progress: ProgressBoard | None = None,
        destination: int = DEFAULT_DESTINATION,
    ) -> None:
        self.settings = settings
        # The deliveries this relay claims and marks: those to this one destination.
        self.destination = destination
        self.progress = progress or ProgressBoard()
        self.state = state
        self.spool = spool
        self.target = target
        self.status = RelayStatus()
        self._wake = asyncio.Event()
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        self._busy_paths: set[str] = set()
        self._zone = ZoneInfo(settings.timezone) if settings.timezone else None
        # The journal id of the pause entry; None while it is being written.
        self._paused_at_event: int | None = 0
        self._next_sweep = now()
        self._listings = FolderListings(target.list_names)
        # Characters this server refused in names (or cut names at), learned from its
        # replies; added to its published rules for every name from then on.
        self._refused_characters: set[str] = set()
        self._outage: Outage | None = None
        # Items whose outcome could not be recorded (sha256 -> why): still `relaying` in the
        # database until the loop manages to put them back in the queue.
        self._unrecorded: dict[str, str] = {}

    def wake(self) -> None:
        """New work arrived (or a pause was lifted by hand): look at the queue now."""
        if self.status.state == RelayState.PAUSED and self.status.paused_until is None:
            return  # a credentials pause is only lifted by `resume`
        self._wake.set()

    def resume(self) -> None:
        """Lifted by hand (`retry`): carry on, and ask a down destination again at once."""
        self.status = RelayStatus(state=RelayState.RUNNING)
        if self._outage is not None:
            self._outage.next_probe = now()
            if self._outage.confirmed:
                self.status = RelayStatus(
                    state=RelayState.WAITING,
                    reason=self._outage.reason,
                    down_since=self._outage.since,
                )
        self._wake.set()

    async def run(self) -> None:
        """The loop; cancelled at shutdown."""
        released = await self.state.arelease_interrupted()
        if released:
            log.info("relay.resumed_after_restart count=%d", released)
        # main.py may start us paused (credentials refused)
        if self.status.state != RelayState.PAUSED:
            self.status = RelayStatus(state=RelayState.RUNNING)
        down_since = await self.state.aopen_outage(destination=self.destination)
        if down_since is not None:  # down when we stopped: ask before sending anything
            since = datetime.fromisoformat(down_since)
            self._outage = Outage(since=since, reason="It did not answer.", confirmed=True)
            if self.status.state == RelayState.RUNNING:
                self.status = RelayStatus(
                    state=RelayState.WAITING, reason=self._outage.reason, down_since=since
                )
        try:
            while True:
                try:
                    await self._sweep_if_due()
                    await self._run_once()
                except sqlite3.Error as exc:
                    # The database cannot be written (disk full, locked): nothing was
                    # changed; look again shortly instead of ending the relay.
                    log.warning("relay.database_unwritable error=%s", exc)
                    await self._sleep(now() + timedelta(seconds=POLL_SECONDS))
        finally:
            for task in self._in_flight.values():
                task.cancel()
            await asyncio.gather(*self._in_flight.values(), return_exceptions=True)
            self.status.state = RelayState.STOPPED

    async def _run_once(self) -> None:
        self._wake.clear()
        if self.status.state == RelayState.PAUSED:
            until = self.status.paused_until
            if until is not None and now() >= until:
                self.status = RelayStatus(state=RelayState.RUNNING)
            elif await self._resume_requested():
                log.info("relay.resumed reason=retry_requested")
                self.status = RelayStatus(state=RelayState.RUNNING)
            else:
                poll = now() + timedelta(seconds=POLL_SECONDS)
                await self._sleep(poll if until is None else min(until, poll))
                return
        await self._record_unrecorded()
        if self._outage is not None and now() >= self._outage.next_probe:
            await self._probe()
        down = self._outage is not None and self._outage.confirmed
        free = self.settings.parallel - len(self._in_flight)
        if free > 0 and not down:
            claimed = await self.state.aclaim_due(
                free, set(self._in_flight), set(self._busy_paths), destination=self.destination
            )
            for receipt, captured_local in claimed:
                self._start(receipt, captured_local)
        if not self._in_flight:
            self._listings.clear()  # idle: the pass is over, list folders afresh next time
        due = None if down else await self.state.anext_due_at(destination=self.destination)
        if due is not None and due <= now() and self._in_flight:
            due = None  # what is due waits for a slot or a busy path: a copy ending wakes us
        wake_at = now() + timedelta(seconds=POLL_SECONDS)
        if due is not None:
            wake_at = min(due, wake_at)
        if self._outage is not None:
            wake_at = min(self._outage.next_probe, wake_at)
        await self._sleep(wake_at)

    async def _probe(self) -> None:
        """Ask the destination one small question (a listing of the top folder)."""
        outage = self._outage
        assert outage is not None
        outage.probes += 1
        try:
            await self.target.list_names("")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if isinstance(exc, TargetError) and exc.transient:
                await self._still_down(outage, exc.message)
                return
            # Any other answer (a refused login, a missing folder) is an answer: the
            # copies that follow meet it and handle it as usual.
            log.info("relay.probe_answered outcome=%r", exc)
        self._outage = None
        if outage.confirmed:
            await self._back(outage)

    async def _still_down(self, outage: Outage, reason: str) -> None:
        outage.reason = reason
        outage.next_probe = now() + timedelta(seconds=self.settings.probe_seconds)
        if outage.confirmed:
            return
        outage.confirmed = True
        if self.status.state == RelayState.RUNNING:
            self.status = RelayStatus(
                state=RelayState.WAITING, reason=reason, down_since=outage.since
            )
        # "every a few seconds" is not English: below ten seconds, "every few seconds".
        every = duration_words(self.settings.probe_seconds).removeprefix("a ")
        log.warning("relay.destination_down reason=%s", reason)
        await self.state.ajournal(
            outage_events(self.destination)[0],
            f"{self._which()} does not answer: {reason} The files are safe on this machine "
            f"and wait; photo-relay asks again every {every} and carries on as soon as it "
            "answers.",
        )

    async def _back(self, outage: Outage) -> None:
        if self.status.state == RelayState.WAITING:
            self.status = RelayStatus(state=RelayState.RUNNING)
        due = await self.state.amake_waiting_due(destination=self.destination)
        took = duration_words((now() - outage.since).total_seconds())
        log.info("relay.destination_back after=%s probes=%d due=%d", took, outage.probes, due)
        await self.state.ajournal(
            outage_events(self.destination)[1],
            f"{self._which()} answers again, after {took}; the {due} waiting file(s) go now.",
        )

    def _which(self) -> str:
        """How the journal names this relay's destination (the configured one as before)."""
        if self.destination == DEFAULT_DESTINATION:
            return "The destination"
        return f"Destination {self.destination} ({self.target.describe()})"

    def _suspect_outage(self, reason: str) -> None:
        """A copy could not reach the destination: probe it now (one probe, not one per file)."""
        if self._outage is None:
            self._outage = Outage(since=now(), reason=reason)
            self._wake.set()

    async def _record_unrecorded(self) -> None:
        """Put back in the queue the items whose outcome could not be written."""
        for sha, reason in list(self._unrecorded.items()):
            await self.state.arelease_unrecorded(
                sha, reason, destination=self.destination
            )  # sqlite3.Error: still stuck
            del self._unrecorded[sha]
            log.info("relay.unrecorded_released sha256=%s", sha)

    async def _sleep(self, until: datetime | None) -> None:
        timeout = None if until is None else max(0.0, (until - now()).total_seconds())
        if timeout == 0.0 and not self._in_flight:
            return
        wake = asyncio.ensure_future(self._wake.wait())
        waiters: list[asyncio.Future[Any]] = [wake, *self._in_flight.values()]
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        wake.cancel()

    def _start(self, receipt: Receipt, captured_local: str) -> None:
        key = name_key(receipt.planned_path)
        self._busy_paths.add(key)
        task = asyncio.create_task(self._deliver_guarded(receipt, captured_local))
        self._in_flight[receipt.sha256] = task

        def done(_: asyncio.Task[None]) -> None:
            self._in_flight.pop(receipt.sha256, None)
            self._busy_paths.discard(key)
            self._wake.set()

        task.add_done_callback(done)

    async def _deliver_guarded(self, receipt: Receipt, captured_local: str) -> None:
        sha = receipt.sha256
        try:
            try:
                async with home_copy_checked(self.spool, sha, receipt.size):
                    await self._deliver(receipt, datetime.fromisoformat(captured_local))
            except HomeCopyDamaged as exc:  # no retry can help: it waits for the file again
                await self.state.amark_damaged(sha, exc.message, destination=self.destination)
                log.warning("relay.home_copy_damaged sha256=%s reason=%s", sha, exc.message)
            except (TargetAuthFailed, TargetFull, TargetMaintenance) as exc:
                await self.state.arelease(sha, exc.message, destination=self.destination)
                await self.pause(exc)
            except (asyncio.CancelledError, sqlite3.Error):
                raise
            except Exception as exc:  # every failure is decided on; nothing is dropped
                await self._after_failure(receipt, exc)
        except sqlite3.Error as exc:
            # The outcome could not be written (the database's disk is full, or it is
            # locked): the item stays `relaying` in the database until the loop puts it
            # back; the next attempt then finds the copy already there.
            log.warning("relay.unrecorded sha256=%s error=%s", sha, exc)
            self._unrecorded[sha] = (
                "The outcome of a copy could not be written to the database on this machine "
                f"({exc}); it is looked at again as soon as the database can be written."
            )

    async def _after_failure(self, receipt: Receipt, exc: Exception) -> None:
        """Retry, wait out an outage, or mark `failed` when a person must act."""
        sha = receipt.sha256
        message = _failure_words(sha, exc)
        if isinstance(exc, TargetError) and exc.transient:
            wait = exc.retry_after if isinstance(exc, TargetUnavailable) else None
            await self._schedule_retry(receipt, message, wait)
            self._suspect_outage(message)
            return
        if isinstance(exc, TargetRejected):
            await self.state.amark_failed(sha, message, destination=self.destination)
            log.warning("relay.failed sha256=%s reason=%s", sha, message)
            return
        problems = await self.state.acount_problems(sha, destination=self.destination) + 1
        if problems >= self.settings.max_attempts:
            if isinstance(exc, VerificationFailed):
                message += (
                    f" The copy at the destination differed from the original {problems} "
                    "times: check the destination's disk and anything in between that may "
                    "alter uploads (a proxy, an antivirus), then retry."
                )
            else:
                message += f" This happened {problems} times in a row."
            await self.state.amark_failed(sha, message, destination=self.destination)
            log.warning("relay.failed sha256=%s reason=%s", sha, message)
            return
        await self._schedule_retry(receipt, message, counted=True)

    async def pause(self, exc: TargetError) -> None:
        """Stop relaying: for 5 minutes when the target is full, for as long as the server
        asks (at most relay_retry_max_seconds) in maintenance, else until `retry`/resume."""
        until = now() + FULL_RECHECK if isinstance(exc, TargetFull) else None
        if isinstance(exc, TargetMaintenance):
            asked = exc.retry_after or MAINTENANCE_RECHECK.total_seconds()
            wait = min(asked, self.settings.retry_max_seconds)
            until = now() + timedelta(seconds=wait)
        was_paused = self.status.state == RelayState.PAUSED
        # Paused at once, before the journal is written off the loop: another copy failing
        # meanwhile must not pause (and journal) a second time.
        self.status = RelayStatus(state=RelayState.PAUSED, reason=exc.message, paused_until=until)
        if not was_paused:
            log.warning("relay.paused reason=%s", exc.message)
            self._paused_at_event = None  # no resume request counts until the entry exists
            self._paused_at_event = await self.state.ajournal(
                "relay.paused", f"The relay paused: {exc.message}"
            )

    async def _resume_requested(self) -> bool:
        """`photo-relay retry` (another process) asks the pause to end."""
        paused_at = self._paused_at_event
        if paused_at is None:
            return False
        return await self.state.alast_event_id("relay.resume_requested") > paused_at

    async def _sweep_if_due(self) -> None:
        if now() < self._next_sweep:
            return
        self._next_sweep = now() + SWEEP_INTERVAL
        try:
            await sweep_spool(self.state, self.spool, self.settings.spool_retention_days)
        except OSError:
            log.exception("spool.sweep_failed")

    async def _schedule_retry(
        self,
        receipt: Receipt,
        message: str,
        retry_after: float | None = None,
        *,
        counted: bool = False,
    ) -> None:
        """Back in the queue after a capped, jittered back-off; never a give-up."""
        delay = retry_delay(
            receipt.attempts,
            base=self.settings.retry_base_seconds,
            cap=self.settings.retry_max_seconds,
        )
        if retry_after is not None:  # the server said when: not earlier, within our cap
            delay = min(max(delay, retry_after), self.settings.retry_max_seconds)
        at = now() + timedelta(seconds=delay)
        await self.state.amark_retry(
            receipt.sha256, message, at, counted=counted, destination=self.destination
        )
        log.info("relay.retry_scheduled sha256=%s delay=%.1fs", receipt.sha256, delay)

    async def _deliver(self, receipt: Receipt, captured_local: datetime) -> None:
        """Copy one item, choosing a free name the server accepts, and mark it verified."""
        crashpoints.reached("relay.after_claim")
        rules = await self.target.name_rules() if isinstance(self.target, NamingTarget) else None
        while True:
            try:
                await self._deliver_named(receipt, captured_local, rules)
                return
            except NameRefused as exc:
                new = set(exc.characters) - self._refused_characters
                if not new:
                    raise  # nothing left to learn: an ordinary retry
                self._refused_characters |= new
                await self.state.ajournal("relay.name_refused", exc.message, sha256=receipt.sha256)

    async def _deliver_named(
        self, receipt: Receipt, captured_local: datetime, server_rules: NameRules | None
    ) -> None:
        sha, size = receipt.sha256, receipt.size
        source = self.spool.path_for(sha)
        rules = with_characters(server_rules, self._refused_characters)
        planned = conform_path(receipt.planned_path, rules)
        folder, _, _ = planned.rpartition("/")
        await self.target.ensure_folder(folder)
        taken = await self._listings.taken(folder)
        captured = capture_instant(receipt.captured_at, captured_local, self._zone)
        for alternative in alternative_paths(planned, sha):
            candidate = conform_path(alternative, rules)
            base = candidate.rpartition("/")[2]
            existing = taken.get(name_key(base))
            if existing is None:
                try:
                    with self.progress.tracking(sha, base, size):
                        proof = await self.target.put_new(
                            candidate, source, size=size, sha256=sha, captured=captured
                        )
                except NameTaken:
                    # Appeared since we listed: look at it like any other. Our proven copy
                    # is kept, so the next name gets it by a MOVE, not sent again.
                    existing = base
                    self._listings.add(folder, base)
                else:
                    self._listings.add(folder, base)
                    proof = proof or await self.target.verify(candidate, size=size, sha256=sha)
                    await self._verified(receipt, proof, "copied", planned)
                    return
            existing_path = f"{folder}/{existing}" if folder else existing
            if await self._holds_our_content(existing_path, size, sha):
                await self.target.discard_upload(candidate, sha)
                proof = await self.target.verify(existing_path, size=size, sha256=sha)
                await self._verified(receipt, proof, "found already there", planned)
                return
            await self.state.ajournal(
                "relay.name_taken",
                f"{existing_path} is taken by another file, so this one gets another name.",
                sha256=sha,
            )
        await self.target.discard_upload(planned, sha)
        raise VerificationFailed("Every name for this file is taken by other content.")

    async def _holds_our_content(self, path: str, size: int, sha256: str) -> bool:
        try:
            await self.target.verify(path, size=size, sha256=sha256)
        except VerificationFailed:
            return False
        return True

    async def _verified(
        self, receipt: Receipt, proof: Verification, how: str, planned: str
    ) -> None:
        crashpoints.reached("relay.before_mark_verified")
        note = (
            ""
            if proof.path == planned
            else (f" (named so because {planned} was taken by another file)")
        )
        if planned != receipt.planned_path:
            note += f" ({receipt.planned_path} renamed to follow the server's rules for names)"
        message = (
            f"Saved to {self.target.describe()} as {proof.path}{note}; {how}, "
            f"verified: {proof.words}."
        )
        await self.state.amark_verified(
            receipt.sha256,
            proof.path,
            proof.method,
            message,
            etag=proof.etag,
            file_id=proof.file_id,
            destination=self.destination,
        )
        log.info("relay.verified sha256=%s path=%s", receipt.sha256, proof.path)
        if self.settings.spool_retention_days == 0:
            await remove_spool_copy(self.state, self.spool, receipt.sha256, 0)


def _failure_words(sha256: str, exc: Exception) -> str:
    """What went wrong, in words a person can act on (the status page shows this)."""
    if isinstance(exc, PhotoRelayError):  # a TargetError, or settings that cannot work
        return exc.message
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        log.warning("relay.os_error sha256=%s error=%r", sha256, exc)
        return f"Could not write at the destination ({exc.strerror}{where})."
    log.exception("relay.unexpected_error sha256=%s", sha256, exc_info=exc)
    return f"Unexpected error while copying: {exc!r}."
