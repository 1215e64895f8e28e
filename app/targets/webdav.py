"""The WebDAV target: copies files to any WebDAV server, never replacing anything there.

A file is streamed (exact Content-Length, never chunked transfer encoding) to a temporary
name beside its destination, checked there (size, then content by the server's hash or by
reading it back), and only then MOVEd to its final name with `Overwrite: F`: the MOVE is a
rename on the server, so the copy that gets the name is the one that was proven. Some
servers ignore `Overwrite`; once after each start the target tries it on two files of its
own, and on such a server it also looks at the final path before writing, so an existing
file is never touched even there. `DavTarget` is the shared machinery; the NextCloud
target (nextcloud/target.py) adds that server's extensions on top of it.

A reply is judged by what the server did (issue 16): after an error reply or a timeout to
the MOVE, both ends are looked at before anything is sent again; after a success the final
name is looked at, so a server that cut the name (at `?`) or refuses characters gets the
file under a safe name, moved there from the proven temp copy, never sent again. A proven
temp copy is kept (and reused) when its name turns out taken or refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import cast
from urllib.parse import quote, unquote, urlsplit

import httpx
from pydantic import SecretStr

from app.config import DestinationSettings
from app.errors import (
    ConfigurationError,
    DoesNotFit,
    NameRefused,
    NameTaken,
    TargetError,
    TargetFull,
    TargetUnavailable,
    VerificationFailed,
)
from app.off_loop import off_loop
from app.progress import report_sent
from app.store.chunk_progress import ChunkProgress
from app.targets.base import Verification
from app.targets.client import open_client
from app.targets.dav_xml import PROPFIND_BODY, QUOTA_BODY, DavEntry, parse_multistatus
from app.targets.replies import Peer, Reply, failure_for, require, transport_errors

__all__ = ["TEMP_PREFIX", "TRIAL_PREFIX", "DavEndpoint", "DavTarget", "UploadProof", "WebDavTarget"]

log = logging.getLogger(__name__)

TEMP_PREFIX = ".photo-relay-upload-"  # never `.part`: NextCloud refuses that extension
TRIAL_PREFIX = f"{TEMP_PREFIX}overwrite-trial-"  # two files in the destination folder
READ_SIZE = 1024 * 1024
# Characters that servers claiming NextCloud compatibility refuse in names (with 400) or cut
# names at (`?`, `#`: read as the start of a query or fragment). NextCloud publishes its own
# list as a capability (app/naming.py's NameRules); these are learned when a server objects.
REFUSED_CHARACTERS = frozenset(':?"<>|*\\#')
# Below this much free space a quota refusal pauses the whole relay; above it, only the
# file that does not fit waits (smaller ones still go).
ROOM_FOR_SMALL_FILES = 1024 * 1024
DOES_NOT_FIT_RECHECK = 300.0  # seconds, as the relay's pause for a full destination
# preadv's flag for "only what is in memory, never wait for the disk" (Linux 4.14+).
NOWAIT: int | None = getattr(os, "RWF_NOWAIT", None)


@dataclass(frozen=True)
class DavEndpoint:
    """Where and as whom to connect; `base` is the destination folder below `root_url`."""

    root_url: str
    base: tuple[str, ...]
    login: str
    password: SecretStr
    uploads_url: str | None = None  # NextCloud's chunked-upload area for this user
    server_url: str | None = None  # NextCloud's base address (status.php, OCS)


@dataclass(frozen=True)
class UploadProof:
    """What the server said about a file it just stored."""

    sha256: str | None = None  # X-Hash-SHA256, computed by the server on what it wrote
    file_id: str | None = None
    mtime_accepted: bool | None = None  # `X-OC-MTime: accepted`; None: no mtime was sent

    @classmethod
    def of(cls, response: httpx.Response, *, mtime_sent: bool) -> UploadProof:
        """What the reply to a PUT (or a chunked upload's assembly MOVE) tells."""
        accepted = response.headers.get("X-OC-MTime", "").lower() == "accepted"
        return cls(
            sha256=(response.headers.get("X-Hash-SHA256") or "").lower() or None,
            file_id=response.headers.get("OC-FileId"),
            mtime_accepted=accepted if mtime_sent else None,
        )


def checked_url(url: str, setting: str = "PHOTO_RELAY_TARGET_URL") -> str:
    """`url` without a trailing slash, or ConfigurationError saying what is wrong with it."""
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, ValueError) as exc:
        raise ConfigurationError(f"{setting} is not a valid URL ({url!r}): {exc}.") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigurationError(
            f"{setting} must be an http:// or https:// address with a host name, not {url!r}."
        )
    return str(parsed).rstrip("/")


def base_folder(settings: DestinationSettings) -> tuple[str, ...]:
    folder = unicodedata.normalize("NFC", settings.folder or "")
    return tuple(part for part in folder.split("/") if part and part != ".")


class JudgedFull(TargetFull):
    """A full destination whose free space was already looked at (not asked again)."""


def refused_in(name: str) -> frozenset[str]:
    """The characters of `name` that some servers refuse."""
    return frozenset(c for c in name if c in REFUSED_CHARACTERS)


def megabytes(count: int) -> str:
    return f"{count / 1_000_000:.1f} MB"


def temp_path(path: str, sha256: str) -> str:
    """Our own temporary name beside `path`; one per content, so a retry reuses it."""
    folder, _, _ = path.rpartition("/")
    name = f"{TEMP_PREFIX}{sha256[:16]}.tmp"
    return f"{folder}/{name}" if folder else name


async def file_stream(source: Path, offset: int, length: int) -> AsyncIterator[bytes]:
    """`length` bytes of `source` from `offset`, a block at a time (never the whole file).

    A block already in the page cache (a photo just received, or read a moment ago) is
    read on the loop with RWF_NOWAIT, which returns at once or refuses (EAGAIN) and never
    waits for the disk; only a block that would wait is read off the loop. That saves a
    thread hop per MiB (`bench.profile relay-photos`). Each block is reported to the
    status page's progress (`report_sent`) once the client asks for the next one, i.e.
    after the block went out.
    """
    handle = await off_loop(open, source, "rb", buffering=0)
    try:
        position, end = offset, offset + length
        while position < end:
            size = min(READ_SIZE, end - position)
            block = _cached_block(handle.fileno(), size, position)
            if block is None:
                block = await off_loop(os.pread, handle.fileno(), size, position)
            if not block:
                raise OSError(f"{source} is shorter than expected")
            position += len(block)
            yield block
            report_sent(len(block))
    finally:
        handle.close()  # a read-only file: closing it never waits for the disk


def _cached_block(fd: int, size: int, position: int) -> bytes | None:
    """Up to `size` bytes at `position` if the page cache holds them now; else None.

    A fresh buffer per block: the transport may still hold the last one while it is sent.
    It is a bytearray, handed on as it is (no copy into `bytes`): the transport writes any
    bytes-like piece.
    """
    if NOWAIT is None:
        return None
    buffer = bytearray(size)
    try:
        read = os.preadv(fd, [buffer], position, NOWAIT)
    except (BlockingIOError, OSError):  # EAGAIN: on disk only; EOPNOTSUPP: not here
        return None
    if read == 0:
        return None  # the end of the file, or nothing cached: the thread read tells which
    return cast(bytes, buffer if read == size else buffer[:read])


class DavTarget:
    """The shared WebDAV machinery; subclasses say how to find the server."""

    kind = "webdav"
    server = "The WebDAV server"  # how messages name it
    label = "the WebDAV server"  # how `describe` names it
    computes_digest = False  # whether `server_digest` may ask the server for a hash

    def __init__(
        self, settings: DestinationSettings, progress: ChunkProgress | None = None
    ) -> None:
        self.settings = settings
        self.progress = progress or ChunkProgress(None)
        self._endpoint: DavEndpoint | None = None
        self._client: httpx.AsyncClient | None = None
        self._retired: list[httpx.AsyncClient] = []
        self._folders: set[str] = set()
        # Whether MOVE with `Overwrite: F` refuses an existing destination; None: not tried.
        self._refuses_overwrite: bool | None = None
        self._overwrite_trial = asyncio.Lock()
        # Temp copies proven identical whose MOVE did not happen (name taken or refused):
        # temp URL -> (size, sha256, how it was proven). Reused instead of sent again.
        self._proven: dict[str, tuple[int, str, str]] = {}

    # -- configuration -----------------------------------------------------------------

    def resolve_endpoint(self) -> DavEndpoint:
        raise NotImplementedError

    def endpoint(self) -> DavEndpoint:
        if self._endpoint is None:
            self._endpoint = self.resolve_endpoint()
        return self._endpoint

    def describe(self) -> str:
        try:
            endpoint = self.endpoint()
        except ConfigurationError as exc:
            return f"{self.server} (not usable yet: {exc.message})"
        folder = "/" + "/".join(endpoint.base)
        where = f"{self.label} at {endpoint.root_url}/"
        return f"the folder {folder} on {where} (as {endpoint.login})"

    def url(self, path: str) -> str:
        """The URL of `path`, relative to the destination folder."""
        parts = [*self.endpoint().base, *(p for p in path.split("/") if p)]
        return self._root_relative_url("/".join(parts))

    def _root_relative_url(self, relative: str) -> str:
        # Not normalised: our own names are NFC already (naming), and a name the server
        # listed must be asked for as the server spells it (NFD on some servers).
        root = self.endpoint().root_url
        return f"{root}/{quote(relative, safe='/')}" if relative else f"{root}/"

    # -- HTTP --------------------------------------------------------------------------

    def peer(self) -> Peer:
        """How error messages name this server and the login in use."""
        endpoint = self.endpoint()
        return Peer(self.server, endpoint.login, endpoint.server_url)

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            endpoint = self.endpoint()
            self._client = open_client(
                login=endpoint.login,
                password=endpoint.password,
                timeout=self.settings.timeout_seconds,
                max_connections=self.settings.parallel + 2,
            )
        return self._client

    def _forget_connection(self) -> None:
        """After refused credentials: reconnect (re-reading credentials) next time.

        The old client is closed at `close()`, not now: parallel requests may still use it.
        """
        if self._client is not None:
            self._retired.append(self._client)
        self._client, self._endpoint = None, None

    async def send(
        self,
        method: str,
        url: str,
        action: str,
        *,
        headers: dict[str, str] | None = None,
        content: bytes | AsyncIterator[bytes] | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        """One request; transport failures become TargetUnavailable. Status not checked."""
        client, peer = self._http(), self.peer()
        async with transport_errors(action, peer):
            response = await client.request(
                method,
                url,
                headers=headers,
                content=content,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
        if response.status_code in (401, 403):
            self._forget_connection()
        if response.status_code == 409:
            self._folders.clear()  # a parent we thought existed is gone: create it again
        await self.inspect_reply(response, action)
        return response

    async def inspect_reply(self, response: httpx.Response, action: str) -> None:
        """A server kind's own reading of a reply, raising what it means (plain WebDAV: none)."""

    async def call(
        self, method: str, url: str, ok: set[int], action: str, **kwargs: object
    ) -> httpx.Response:
        """`send`, then raise unless the status is one of the documented successes `ok`."""
        peer = self.peer()  # before: a refused login makes the target forget its endpoint
        response = await self.send(method, url, action, **kwargs)  # type: ignore[arg-type]
        return require(response, ok, action, peer)

    async def stat(self, url: str, action: str) -> DavEntry | None:
        """PROPFIND Depth 0: the entry at `url`, or None if nothing is there."""
        response = await self.call(
            "PROPFIND",
            url,
            {207, 404},
            action,
            headers={"Depth": "0", "Content-Type": "application/xml; charset=utf-8"},
            content=PROPFIND_BODY,
        )
        if response.status_code == 404:
            return None
        entries = parse_multistatus(response.content, self.server)
        return entries[0] if entries else None

    async def listing(self, url: str, action: str) -> list[DavEntry] | None:
        """PROPFIND Depth 1: the entries inside `url` (not itself), or None if it is missing."""
        response = await self.call(
            "PROPFIND",
            url,
            {207, 404},
            action,
            headers={"Depth": "1", "Content-Type": "application/xml; charset=utf-8"},
            content=PROPFIND_BODY,
        )
        if response.status_code == 404:
            return None
        own = unicodedata.normalize("NFC", unquote(urlsplit(url).path)).rstrip("/")
        entries = parse_multistatus(response.content, self.server)
        return [e for e in entries if unicodedata.normalize("NFC", e.path) != own]

    async def free_bytes(self) -> int | None:
        """The space left for us in the destination folder (RFC 4331); None if unknown."""
        try:
            response = await self.call(
                "PROPFIND",
                self.url(""),
                {207},
                "asking how much space is left",
                headers={"Depth": "0", "Content-Type": "application/xml; charset=utf-8"},
                content=QUOTA_BODY,
            )
            entries = parse_multistatus(response.content, self.server)
        except TargetError:
            return None
        return entries[0].free_bytes if entries else None

    async def quota_refusal(self, exc: TargetFull, size: int) -> TargetError:
        """A full destination, judged per file: only this file waits while others fit."""
        if isinstance(exc, JudgedFull):
            return exc
        free = await self.free_bytes()
        return exc if free is None else self.room_verdict(free, size, exc.message)

    def room_verdict(self, free: int, size: int, refusal: str) -> TargetError:
        """What `free` bytes left mean for a file of `size` the server has no room for.

        A figure above the file's size does not explain the refusal (a disk's free space
        beside a user's quota): then the whole relay pauses, as for any full server.
        """
        if ROOM_FOR_SMALL_FILES <= free < size:
            return DoesNotFit(
                f"{self.server} has {megabytes(free)} left, not enough for this file of "
                f"{megabytes(size)}; smaller files still go. Free space or raise the quota; "
                "photo-relay tries this one again in a few minutes.",
                retry_after=DOES_NOT_FIT_RECHECK,
            )
        return JudgedFull(f"{refusal} {self.server} reports {megabytes(free)} free.")

    async def ready(self) -> None:
        """Learn what the server needs before the first request (plain WebDAV: nothing)."""

    # -- the Target interface ----------------------------------------------------------

    async def check(self) -> None:
        """Configuration and credentials; an unreachable server is normal (we retry later)."""
        endpoint = self.endpoint()
        try:
            await self.ready()
            endpoint = self.endpoint()
            root = await self.stat(self._root_relative_url(""), "looking at the top folder")
        except TargetUnavailable as exc:
            log.warning("target.unreachable reason=%s", exc.message)
            return
        if root is None or not root.is_collection:
            raise ConfigurationError(
                f"There is no WebDAV folder at {endpoint.root_url}/. Check "
                "PHOTO_RELAY_TARGET_URL and PHOTO_RELAY_TARGET_USER."
            )

    async def server_time(self) -> datetime | None:
        """The server's clock, from the `Date` header of a cheap request; None if unknown.

        `photo-relay doctor` compares it with ours (doctor.destination.ServerClock).
        """
        try:
            await self.ready()
            response = await self.send("OPTIONS", self._root_relative_url(""), "asking the time")
        except TargetUnavailable:
            return None
        try:
            return parsedate_to_datetime(response.headers.get("Date", ""))
        except (TypeError, ValueError):
            return None

    async def close(self) -> None:
        clients = [*self._retired, *([self._client] if self._client else [])]
        self._client, self._retired = None, []
        for client in clients:
            await client.aclose()

    async def ensure_folder(self, folder: str) -> None:
        await self.ready()
        parts = [*self.endpoint().base, *(p for p in folder.split("/") if p)]
        for depth in range(1, len(parts) + 1):
            relative = "/".join(parts[:depth])
            if relative in self._folders:
                continue
            url = self._root_relative_url(relative)
            action = f"creating the folder /{relative}"
            response = await self.call("MKCOL", url, {201, 405, 409}, action)
            if response.status_code == 409:
                raise TargetUnavailable(f"{self.server} lost the parent of /{relative}.")
            if response.status_code == 405:
                # 405 means "something is there": only a collection will do.
                entry = await self.stat(url, action)
                if entry is None:
                    # Nothing there, yet the server will not create it: a limit of its own.
                    raise TargetUnavailable(
                        f"{self.server} refuses to create the folder /{relative} (HTTP 405), "
                        f"though nothing is there. It may not allow folders {depth} levels "
                        "deep or this name; choose a shorter PHOTO_RELAY_TARGET_FOLDER or "
                        "PHOTO_RELAY_PATH_TEMPLATE."
                    )
                if not entry.is_collection:
                    raise TargetUnavailable(
                        f"/{relative} on {self.server} is a file, not a folder. Move it away "
                        "so photo-relay can create the folder."
                    )
            self._folders.add(relative)

    async def list_names(self, folder: str) -> list[str]:
        await self.ready()
        entries = await self.listing(self.url(folder), f"listing /{folder}")
        return [e.name for e in entries or [] if not e.name.startswith(TEMP_PREFIX)]

    async def put_new(
        self, path: str, source: Path, *, size: int, sha256: str, captured: datetime
    ) -> Verification | None:
        await self.ready()
        final_url = self.url(path)
        # Where MOVE ignores Overwrite: F, look before writing anything (the relay's folder
        # listing is older); where it is honoured, the MOVE itself refuses a taken name.
        honoured = await self.refuses_overwrite()
        if not honoured and await self.stat(final_url, f"looking at {path}") is not None:
            raise NameTaken(f"{path} already exists on {self.server}.")
        temp = temp_path(path, sha256)
        temp_url = self.url(temp)
        reused = await self._proven_copy(temp_url, size, sha256)
        if reused is not None:
            proof, method = UploadProof(), reused
        else:
            try:
                proof = await self.upload(
                    temp_url, source, size=size, sha256=sha256, captured=captured
                )
            except TargetFull as exc:
                raise await self.quota_refusal(exc, size) from exc
            method = await self._check_copy(temp, temp_url, size=size, sha256=sha256, proof=proof)
            self._proven[temp_url] = (size, sha256, method)
        moved = await self._move_into_place(temp_url, final_url, path, size)
        self._proven.pop(temp_url, None)
        landed = await self._landed(final_url, path, size, sha256, temp_url)
        return Verification(
            path=path,
            method=method,
            etag=(moved.headers.get("ETag") if moved else None) or landed.etag,
            file_id=(moved.headers.get("OC-FileId") if moved else None)
            or proof.file_id
            or landed.file_id,
            mtime_accepted=proof.mtime_accepted,
        )

    async def _proven_copy(self, temp_url: str, size: int, sha256: str) -> str | None:
        """How our temp copy was proven, if one proven earlier is still there; else None."""
        known = self._proven.get(temp_url)
        if known is None or known[:2] != (size, sha256):
            return None
        entry = await self.stat(temp_url, "looking at the copy already uploaded")
        if entry is None or entry.is_collection or entry.size != size:
            self._proven.pop(temp_url, None)
            return None
        log.info("target.temp_copy_reused url=%s", temp_url)
        return known[2]

    async def _landed(
        self, final_url: str, path: str, size: int, sha256: str, temp_url: str
    ) -> DavEntry:
        """The file under its final name after a MOVE the server called a success.

        Its size must be ours, and a SHA-256 the server lists for it (NextCloud keeps the
        checksum sent with the upload) must be ours too.

        A server that stored it under another name (cut at `?`) is caught here; the copy
        found under the cut name is moved back to the temp name, so the relay can give it
        a safe name without sending it again.
        """
        entry = await self.stat(final_url, f"looking at {path}")
        if entry is not None and not entry.is_collection and entry.size == size:
            stored = {c.lower() for c in entry.checksums if c.lower().startswith("sha256:")}
            if stored and f"sha256:{sha256}" not in stored:
                # The server's own SHA-256 of what is under the name is not ours.
                raise VerificationFailed(
                    f"{path} on {self.server} holds other content than the copy just moved "
                    "there; photo-relay sends it again."
                )
            return entry
        characters = refused_in(path.rpartition("/")[2])
        recovered = await self._recover_cut_copy(path, characters, size, sha256, temp_url)
        where = " (moved back to be named again)" if recovered else ""
        raise NameRefused(
            f"{self.server} answered that it stored {path}, but there is no such file: it "
            f"changes names with {''.join(sorted(characters)) or 'some characters'} in them"
            f"{where}. photo-relay names the file again without them.",
            characters=characters,
        )

    async def _recover_cut_copy(
        self, path: str, characters: frozenset[str], size: int, sha256: str, temp_url: str
    ) -> bool:
        """Move our copy back from where the server put it, if it is provably ours.

        Only a file carrying the checksum we sent with it (NextCloud's OC-Checksum, which
        moves with a file) counts: a file of the owner's with the same bytes is never moved.
        """
        folder, _, name = path.rpartition("/")
        for character in sorted(characters):
            cut = name.split(character, 1)[0]
            if not cut:
                continue
            candidate = f"{folder}/{cut}" if folder else cut
            url = self.url(candidate)
            entry = await self.stat(url, f"looking at {candidate}")
            ours = f"sha256:{sha256}" in {c.lower() for c in entry.checksums} if entry else False
            if entry is None or entry.size != size or not ours:
                continue
            action = f"moving {candidate} back to be named again"
            headers = {"Destination": temp_url, "Overwrite": "T"}
            await self.call("MOVE", url, {201, 204}, action, headers=headers)
            self._proven[temp_url] = (size, sha256, "size+stored-checksum")
            return True
        return False

    async def discard_upload(self, path: str, sha256: str) -> None:
        """Remove our temp copy for `path` if one was kept (its content is elsewhere now)."""
        temp_url = self.url(temp_path(path, sha256))
        if self._proven.pop(temp_url, None) is not None:
            await self.remove_own(temp_url, temp_path(path, sha256))

    async def remove_own(self, url: str, path: str) -> None:
        """DELETE a file photo-relay made itself (a temp copy), and what the server keeps."""
        response = await self.call("DELETE", url, {200, 204, 404}, f"removing {path}")
        if response.status_code != 404:
            await self.purge_deleted(url)

    async def purge_deleted(self, url: str) -> None:
        """Where the server keeps deleted files (a trash bin), remove our copy there too."""

    async def refuses_overwrite(self) -> bool:
        """Whether this server's MOVE keeps an existing destination under `Overwrite: F`.

        Learned once after each start, with two tiny files of our own in the destination
        folder: a MOVE of one onto the other must answer 412. Their names are fixed, so a
        trial cut short by a crash is cleaned up by the next one.
        """
        async with self._overwrite_trial:
            if self._refuses_overwrite is None:
                self._refuses_overwrite = await self._try_overwrite()
                log.info("target.overwrite_f honoured=%s", self._refuses_overwrite)
            return self._refuses_overwrite

    async def _try_overwrite(self) -> bool:
        first, second = (self.url(f"{TRIAL_PREFIX}{n}.tmp") for n in ("a", "b"))
        action = "checking that the server refuses to overwrite on MOVE"
        try:
            for url, body in ((first, b"a"), (second, b"b")):
                await self.call("PUT", url, {201, 204}, action, content=body)
            headers = {"Destination": second, "Overwrite": "F"}
            peer = self.peer()
            response = await self.send("MOVE", first, action, headers=headers)
            if response.status_code not in (412, 201, 204):
                raise failure_for(response, action, peer)
            return response.status_code == 412
        finally:
            for url, name in ((first, "a"), (second, "b")):
                with contextlib.suppress(TargetError):  # the next trial removes a leftover
                    await self.remove_own(url, f"{TRIAL_PREFIX}{name}.tmp")

    async def verify(self, path: str, *, size: int, sha256: str) -> Verification:
        """Read-only proof for a file found at `path` (it may not be ours: nothing is changed)."""
        await self.ready()
        url = self.url(path)
        entry = await self.stat(url, f"looking at {path}")
        if entry is None or entry.is_collection:
            raise VerificationFailed(f"{path} is not a file on {self.server}.")
        if entry.size != size:
            raise VerificationFailed(f"{path} holds {entry.size} bytes, not {size}.")
        if not self.settings.verify_read_back:
            raise VerificationFailed(
                f"{path} has the right size, but its content cannot be proven without reading "
                "it back (PHOTO_RELAY_TARGET_VERIFY_READ_BACK is off)."
            )
        if await self.read_back(url, path) != sha256:
            raise VerificationFailed(f"{path} holds different content.")
        return Verification(
            path=path, method="size+sha256-readback", etag=entry.etag, file_id=entry.file_id
        )

    async def delete(self, path: str) -> None:
        await self.ready()
        await self.remove_own(self.url(path), path)

    # -- steps, overridable by server kind ---------------------------------------------

    def upload_headers(self, sha256: str, captured: datetime) -> dict[str, str]:
        return {}

    async def upload(
        self, url: str, source: Path, *, size: int, sha256: str, captured: datetime
    ) -> UploadProof:
        """Store `source` at `url` (our own temporary name, so replacing it is fine)."""
        return await self.single_put(url, source, size=size, sha256=sha256, captured=captured)

    async def single_put(
        self, url: str, source: Path, *, size: int, sha256: str, captured: datetime
    ) -> UploadProof:
        headers = {
            "Content-Length": str(size),
            "Content-Type": "application/octet-stream",
            **self.upload_headers(sha256, captured),
        }
        peer = self.peer()
        response = await self.send(
            "PUT", url, "uploading", headers=headers, content=file_stream(source, 0, size)
        )
        require(response, {201, 204}, "uploading", peer)
        return UploadProof.of(response, mtime_sent="X-OC-Mtime" in headers)

    async def server_digest(self, url: str) -> str | None:
        """A SHA-256 the server computes from what it stored, if it can (NextCloud can)."""
        return None

    async def read_back(self, url: str, path: str) -> str:
        """Download the file and hash it as it streams in."""
        read = await self.read_back_sized(url, path, missing_ok=False)
        assert read is not None
        return read[0]

    async def read_back_sized(
        self, url: str, path: str, *, missing_ok: bool = True
    ) -> tuple[str, int] | None:
        """The SHA-256 and length of the file as read back; None if it is missing (404)."""
        digest = hashlib.sha256()
        length = 0
        client, peer = self._http(), self.peer()
        action = f"reading {path} back"
        # identity: the exact stored bytes, with nothing for either side to (de)compress.
        headers = {"Accept-Encoding": "identity"}
        async with (
            transport_errors(action, peer),
            client.stream("GET", url, headers=headers) as response,
        ):
            if response.status_code == 404 and missing_ok:
                await response.aread()
                return None
            if response.status_code != 200:
                await response.aread()
                raise failure_for(response, action, peer)
            # The pieces as they arrive: gathering them into 1 MiB blocks first (httpx's
            # chunk_size) cost more CPU than hashing them (py-spy, 1 GiB read back).
            async for block in response.aiter_bytes():
                digest.update(block)
                length += len(block)
        return digest.hexdigest(), length

    async def _check_copy(
        self, temp: str, url: str, *, size: int, sha256: str, proof: UploadProof
    ) -> str:
        """Prove the uploaded temp file is ours before it gets its name; say how."""
        problem: str | None = None
        if not proof.sha256 and not self.computes_digest and self.settings.verify_read_back:
            # Reading it back proves size and content at once: no PROPFIND before it
            # (one request less per file; measured in docs/PERFORMANCE.md).
            method = "size+sha256-readback"
            read = await self.read_back_sized(url, temp)
            if read is None:
                problem = "the server said it stored the file, but it is not there"
            elif read[1] != size:
                problem = f"the server stored {read[1]} bytes of {size}"
            elif read[0] != sha256:
                problem = "the copy read back differs from the original"
            if problem is not None:
                await self.remove_own(url, temp)
                raise VerificationFailed(
                    f"The upload was not intact ({problem}); sending it again."
                )
            return method
        if proof.sha256:
            # The server's SHA-256 of the bytes it stored proves size and content at once,
            # and the look at the final name after the MOVE (`_landed`) still catches a
            # file that is not there: no PROPFIND of the temp copy (3 requests per photo).
            if proof.sha256 != sha256:
                await self.remove_own(url, temp)
                raise VerificationFailed(
                    "The upload was not intact (the server's hash differs from ours); "
                    "sending it again."
                )
            return "size+x-hash-sha256"
        entry = await self.stat(url, "looking at the uploaded file")
        method = "size-only"
        if entry is None:
            problem = "the server said it stored the file, but it is not there"
        elif entry.size != size:
            problem = f"the server stored {entry.size} bytes of {size}"
        elif (digest := await self.server_digest(url)) is not None:
            method = "size+recalculated-sha256"
            problem = None if digest == sha256 else "the server's hash differs from ours"
        elif self.settings.verify_read_back:
            method = "size+sha256-readback"
            same = await self.read_back(url, temp) == sha256
            problem = None if same else "the copy read back differs from the original"
        if problem is not None:
            await self.remove_own(url, temp)
            raise VerificationFailed(f"The upload was not intact ({problem}); sending it again.")
        return method

    async def _move_into_place(
        self, temp_url: str, final_url: str, path: str, size: int
    ) -> httpx.Response | None:
        """MOVE the proven temp copy to its name; its reply (None if it was lost in transit)."""
        action = f"moving the upload to {path}"
        headers = {"Destination": final_url, "Overwrite": "F"}
        peer = self.peer()
        lost: TargetUnavailable | None = None
        response: httpx.Response | None = None
        try:
            response = await self.send("MOVE", temp_url, action, headers=headers)
        except TargetUnavailable as exc:
            lost = exc
        if response is None or response.status_code >= 500:
            # Outcome unknown (a timeout, or a proxy's 504 while the server went on): look
            # at both ends before anything is sent again.
            landed = await self.stat(final_url, action)
            gone = await self.stat(temp_url, action) is None
            if landed is not None and landed.size == size and gone:
                log.info("target.move_done_despite_reply path=%s", path)
                return None
            if lost is not None or response is None:
                raise lost or TargetUnavailable(f"{self.server} did not answer the MOVE.")
            raise failure_for(response, action, peer)
        if response.status_code == 201:
            return response
        if response.status_code == 204:
            # The server replaced something that appeared after we looked (a race we
            # cannot close on servers that ignore Overwrite: F); say so loudly.
            log.error("target.move_replaced path=%s", path)
            return response
        if response.status_code == 412:
            # The proven temp copy stays: the relay moves it to the alternative name.
            raise NameTaken(f"{path} appeared on {self.server} while uploading.")
        characters = refused_in(path.rpartition("/")[2])
        if response.status_code == 400 and characters:
            raise NameRefused(
                f"{self.server} refuses the name {path} (HTTP 400: {Reply.of(response).reason})"
                f"; photo-relay names it again without {''.join(sorted(characters))}.",
                characters=characters,
            )
        raise failure_for(response, action, peer)


class WebDavTarget(DavTarget):
    """Any WebDAV server: PHOTO_RELAY_TARGET_URL is the WebDAV folder to write into."""

    kind = "webdav"
    server = "The WebDAV server"

    def resolve_endpoint(self) -> DavEndpoint:
        settings = self.settings
        if not settings.url:
            raise ConfigurationError(
                "PHOTO_RELAY_TARGET_URL is not set: give the address of the WebDAV folder."
            )
        url = checked_url(settings.url)
        if not settings.user or settings.password is None:
            raise ConfigurationError(
                "The WebDAV target needs PHOTO_RELAY_TARGET_USER and PHOTO_RELAY_TARGET_PASSWORD."
            )
        return DavEndpoint(
            root_url=url,
            base=base_folder(settings),
            login=settings.user,
            password=settings.password,
        )
