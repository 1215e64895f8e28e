"""The NextCloud target: WebDAV plus NextCloud's extensions.

On top of the WebDAV target it sends the capture time (`X-OC-Mtime`), our checksum
(`OC-Checksum`) and asks for the server's own hash (`X-Hash`); it proves content with that
hash or with `PATCH X-Recalculate-Hash`; and it sends files over the size threshold with
chunked upload v2, whose progress is kept in the database so a dropped connection or a
restart resumes after the last complete chunk the server confirms (or starts clean where
it cannot say). Servers without the chunking endpoint (or a 413 on a single PUT) are handled
here too. Before its first request it asks the server
(OCS) for the user id behind a login set by environment (an e-mail login is not the uid
DAV URLs need) and for its forbidden-name rules, which the relay applies when naming.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import httpx
from pydantic import ValidationError

from app.errors import (
    ConfigurationError,
    PhotoRelayError,
    TargetError,
    TargetFull,
    TargetMaintenance,
    TargetRejected,
    TargetUnavailable,
)
from app.naming import NameRules
from app.progress import report_sent
from app.store.chunk_progress import ChunkedUpload
from app.targets.base import Verification
from app.targets.dav_xml import TRASH_BODY, parse_multistatus
from app.targets.nextcloud.api import Capabilities, NextcloudApi
from app.targets.nextcloud.credentials import load_credentials
from app.targets.replies import Reply, TooLarge, failure_for, maintenance, require
from app.targets.webdav import (
    DavEndpoint,
    DavTarget,
    UploadProof,
    base_folder,
    checked_url,
    file_stream,
    megabytes,
)

__all__ = ["NextcloudTarget"]

log = logging.getLogger(__name__)

GiB = 1024**3
# NextcloudKit's rule for the assembly MOVE: 3 minutes per GiB, 1 to 30 minutes.
MOVE_SECONDS_PER_GIB = 180.0
MOVE_MAX_SECONDS = 1800.0


def name_rules_from(capabilities: Capabilities) -> NameRules:
    return NameRules(
        names=capabilities.forbidden_filenames,
        basenames=capabilities.forbidden_basenames,
        characters=capabilities.forbidden_characters,
        extensions=capabilities.forbidden_extensions,
    )


class ChunkingUnavailable(TargetError):
    """The server has no chunked-upload endpoint; send the file in one piece."""


class NextcloudTarget(DavTarget):
    kind = "nextcloud"
    server = label = "NextCloud"
    computes_digest = True  # PATCH X-Recalculate-Hash, before any read-back

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._chunking: bool | None = None  # None: not tried yet
        self._recalculate: bool | None = None
        self._user_id: str | None = None  # looked up for a login set by environment
        self._rules: NameRules | None = None  # None: not asked yet
        self._trash: bool | None = None  # whether the server has a trash bin; None: unknown

    def resolve_endpoint(self) -> DavEndpoint:
        settings = self.settings
        try:
            stored = load_credentials(settings.credentials_file)
        except (OSError, ValueError, ValidationError) as exc:
            raise ConfigurationError(
                f"The NextCloud credentials file {settings.credentials_file} cannot be read "
                f"({exc.__class__.__name__}); run `photo-relay nextcloud login` again."
            ) from exc
        server = settings.url or (stored.server if stored else None)
        if not server:
            raise ConfigurationError(
                "PHOTO_RELAY_TARGET_URL is not set: give your NextCloud's address (e.g. "
                "https://cloud.example.org), or run `photo-relay nextcloud login URL`."
            )
        server = checked_url(server)
        if "/remote.php/" in server or "/index.php" in server:
            raise ConfigurationError(
                f"PHOTO_RELAY_TARGET_URL should be NextCloud's base address, not {server!r} "
                "(leave out /remote.php/... ; use the `webdav` target for a WebDAV URL)."
            )
        if settings.password is not None:
            if not settings.user:
                raise ConfigurationError(
                    "PHOTO_RELAY_TARGET_PASSWORD is set but PHOTO_RELAY_TARGET_USER is not."
                )
            login = settings.user
            user_id = self._user_id or login  # `ready` looks the real uid up
            password = settings.password
        elif stored is not None:
            login, user_id, password = stored.login_name, stored.user_id, stored.app_password
        else:
            raise ConfigurationError(
                "No NextCloud credentials: run `photo-relay nextcloud login`, or set "
                "PHOTO_RELAY_TARGET_USER and PHOTO_RELAY_TARGET_PASSWORD (an app password)."
            )
        uid = quote(user_id, safe="")
        return DavEndpoint(
            root_url=f"{server}/remote.php/dav/files/{uid}",
            base=base_folder(settings),
            login=login,
            password=password,
            uploads_url=f"{server}/remote.php/dav/uploads/{uid}",
            server_url=server,
        )

    async def ready(self) -> None:
        """Once per connection: the uid for a login from the environment, and name rules."""
        if self._rules is not None:
            return
        endpoint = self.endpoint()
        from_env = self.settings.password is not None
        try:
            user_id, rules = await self._ask_server(endpoint, from_env)
        except TargetUnavailable as exc:
            if await self._in_maintenance():
                raise TargetMaintenance(
                    "NextCloud is in maintenance mode; photo-relay waits and carries on when "
                    "it is back, without counting this as a failed attempt."
                ) from exc
            raise
        if user_id is not None and user_id != endpoint.login:
            log.info("target.user_id_differs_from_login user_id=%s", user_id)
            self._user_id, self._endpoint = user_id, None
        self._rules = rules

    def api(self) -> NextcloudApi:
        """NextCloud's status/OCS side, over this target's own connection and login."""
        endpoint = self.endpoint()
        assert endpoint.server_url is not None
        return NextcloudApi(endpoint.server_url, login_name=endpoint.login, client=self._http())

    async def _ask_server(
        self, endpoint: DavEndpoint, from_env: bool
    ) -> tuple[str | None, NameRules]:
        """(the user id if looked up, the forbidden-name rules) from NextCloud's OCS API."""
        async with self.api() as api:
            if from_env:
                try:
                    user_id = await api.current_user_id()
                except ConfigurationError:  # NextCloud-compatible without OCS: no rules either
                    log.info("target.no_ocs login_used_as_uid=true")
                    return None, NameRules()
            else:
                user_id = None
            try:
                return user_id, name_rules_from(await api.capabilities())
            except ConfigurationError:
                return user_id, NameRules()

    async def name_rules(self) -> NameRules:
        await self.ready()
        return self._rules or NameRules()

    def _forget_connection(self) -> None:
        super()._forget_connection()
        self._rules = self._user_id = None  # the credentials may change: ask again

    async def inspect_reply(self, response: httpx.Response, action: str) -> None:
        """A 503 while status.php says "maintenance" is a maintenance pause.

        NextCloud's own 503 names maintenance in its body (replies knows that one); a
        proxy in front may answer a bare 503 instead, so status.php is asked.
        """
        if response.status_code == 503 and await self._in_maintenance():
            raise maintenance(Reply.of(response), self.peer(), action)

    async def _in_maintenance(self) -> bool:
        """Whether status.php says maintenance or a pending upgrade; False if it cannot tell."""
        try:
            async with self.api() as api:
                status = await api.status()
        except PhotoRelayError:
            return False
        return status.maintenance or status.needs_db_upgrade

    def upload_headers(self, sha256: str, captured: datetime) -> dict[str, str]:
        headers = {"OC-Checksum": f"SHA256:{sha256}", "X-Hash": "sha256"}
        mtime = int(captured.timestamp())
        if mtime > 86400:  # NextCloud fails the request on smaller values (after writing)
            headers["X-OC-Mtime"] = str(mtime)
        return headers

    async def upload(
        self, url: str, source: Path, *, size: int, sha256: str, captured: datetime
    ) -> UploadProof:
        big = size > self.settings.chunk_threshold_bytes
        if big and self._chunking is not False:
            try:
                return await self._chunked(url, source, size=size, sha256=sha256, captured=captured)
            except ChunkingUnavailable:
                log.info("target.chunking_unavailable fallback=single_put")
        try:
            return await self.single_put(url, source, size=size, sha256=sha256, captured=captured)
        except TooLarge:
            if big or self._chunking is False or size == 0:
                raise
            log.info("target.too_large size=%d switching=chunked", size)
            try:
                return await self._chunked(url, source, size=size, sha256=sha256, captured=captured)
            except ChunkingUnavailable as exc:
                raise TargetRejected(
                    f"NextCloud refuses a file of {size} bytes in one piece and offers no "
                    "chunked upload; raise the web server's body size limit."
                ) from exc

    async def verify(self, path: str, *, size: int, sha256: str) -> Verification:
        """Read-only proof for a file found at `path`; see DavTarget.verify.

        With read-back off, our SHA-256 stored with the file (OC-Checksum, which only a
        client that had these exact bytes would have sent) plus the size is accepted, so a
        copy made just before a crash is recognised instead of duplicated.
        """
        if self.settings.verify_read_back:
            return await super().verify(path, size=size, sha256=sha256)
        entry = await self.stat(self.url(path), f"looking at {path}")
        ours = (
            entry is not None
            and entry.size == size
            and not entry.is_collection
            and f"sha256:{sha256}" in {c.lower() for c in entry.checksums}
        )
        if ours and entry is not None:
            return Verification(
                path=path, method="size+stored-checksum", etag=entry.etag, file_id=entry.file_id
            )
        return await super().verify(path, size=size, sha256=sha256)

    async def server_digest(self, url: str) -> str | None:
        """PATCH with X-Recalculate-Hash: the server re-reads the file and tells its SHA-256."""
        if self._recalculate is False:
            return None
        response = await self.call(
            "PATCH",
            url,
            {200, 204, 400, 405, 501},
            "asking NextCloud to hash the upload",
            headers={"X-Recalculate-Hash": "sha256"},
        )
        algorithm, _, value = response.headers.get("OC-Checksum", "").partition(":")
        if response.status_code not in (200, 204) or algorithm.upper() != "SHA256" or not value:
            self._recalculate = False
            return None
        self._recalculate = True
        return value.strip().lower()

    # -- chunked upload v2 -------------------------------------------------------------

    async def _chunked(
        self, url: str, source: Path, *, size: int, sha256: str, captured: datetime
    ) -> UploadProof:
        """Chunked upload v2, resumed where the server confirms what it has (issue 16).

        Saved progress is trusted only as far as the upload folder's listing shows complete
        chunks; a server that lists no sizes gets a clean restart (the whole upload folder
        deleted, never single chunks: some servers refuse that). An upload given up (full,
        or refused) is deleted with its progress, so no dead folder holds the quota.
        """
        uploads = self.endpoint().uploads_url
        assert uploads is not None
        common = {"Destination": url, "OC-Total-Length": str(size)}
        upload, done = await self._resume_or_start(uploads, url, size, sha256, common)
        folder = f"{uploads}/{upload.upload_id}"
        chunk = upload.chunk_size
        count = -(-size // chunk)
        report_sent(min(size, done * chunk))  # resumed: those parts are already there
        for number in range(done + 1, count + 1):
            offset = (number - 1) * chunk
            length = min(chunk, size - offset)
            try:
                await self.call(
                    "PUT",
                    f"{folder}/{number:05d}",
                    {201, 204},
                    f"sending part {number} of {count}",
                    headers={**common, "Content-Length": str(length)},
                    content=file_stream(source, offset, length),
                )
            except TooLarge as exc:
                # One chunk is small: a 413 for it is the quota (or a disk) running out.
                await self._abandon(upload)
                raise TargetFull(exc.message) from exc
            except TargetFull:
                await self._abandon(upload)  # its chunks count against the quota
                raise
            upload = await self.progress.advance(upload, number)
        # Our own temp name: a stale copy from an earlier attempt may go.
        await self.remove_own(url, "an old upload")
        return await self._assemble(upload, folder, url, size, sha256, captured, common)

    async def _assemble(
        self,
        upload: ChunkedUpload,
        folder: str,
        url: str,
        size: int,
        sha256: str,
        captured: datetime,
        common: dict[str, str],
    ) -> UploadProof:
        """MOVE .file; after an error reply or a timeout, look before sending anything again."""
        headers = {**common, "Overwrite": "F", **self.upload_headers(sha256, captured)}
        timeout = min(MOVE_MAX_SECONDS, max(60.0, MOVE_SECONDS_PER_GIB * size / GiB))
        action = "assembling the parts"
        peer = self.peer()
        lost: TargetUnavailable | None = None
        response = None
        try:
            response = await self.send(
                "MOVE", f"{folder}/.file", action, headers=headers, timeout=timeout
            )
        except TargetUnavailable as exc:
            lost = exc
        if response is not None and response.status_code in (201, 204):
            await self.progress.forget(sha256)
            return UploadProof.of(response, mtime_sent="X-OC-Mtime" in headers)
        if lost is not None or (response is not None and response.status_code >= 500):
            # Assembly may still have worked (a proxy's 504, a timeout): look first.
            landed = await self.stat(url, action)
            if landed is not None and landed.size == size:
                log.info("target.assembled_despite_reply upload=%s", upload.upload_id)
                await self.progress.forget(sha256)
                return UploadProof()
            if lost is not None:
                raise lost  # the chunks stay: the next attempt only repeats the MOVE
            assert response is not None
            raise failure_for(response, action, peer)
        assert response is not None
        # Refused for good (e.g. the parts do not add up): start clean next time.
        await self._abandon(upload)
        require(response, {201, 204}, action, peer)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _abandon(self, upload: ChunkedUpload) -> None:
        """Delete the whole upload folder and its saved progress."""
        uploads = self.endpoint().uploads_url
        await self.call(
            "DELETE",
            f"{uploads}/{upload.upload_id}",
            {200, 204, 404},
            "removing an abandoned upload",
        )
        await self.progress.forget(upload.sha256)
        log.info("target.chunked_abandoned upload=%s", upload.upload_id)

    async def _resume_or_start(
        self, uploads: str, url: str, size: int, sha256: str, common: dict[str, str]
    ) -> tuple[ChunkedUpload, int]:
        """The upload to continue and how many chunks the server confirms it has."""
        saved = await self.progress.load(sha256)
        chunk = self.settings.chunk_bytes
        if saved is not None:
            same = (saved.destination, saved.total_size, saved.chunk_size) == (url, size, chunk)
            if same and not saved.restart:
                done = await self._chunks_on_server(f"{uploads}/{saved.upload_id}", saved)
                if done is not None:
                    log.info("target.chunked_resume upload=%s chunks=%d", saved.upload_id, done)
                    return saved, done
            await self._abandon(saved)
        free = await self.free_bytes()
        if free is not None and free < size:  # refused after many chunks otherwise
            raise self.room_verdict(
                free,
                size,
                f"NextCloud is full: there is no room for a file of {megabytes(size)}. Free "
                "space or raise the quota; photo-relay looks again every few minutes and "
                "keeps the files safe at home meanwhile.",
            )
        upload = ChunkedUpload(
            sha256=sha256,
            upload_id=f"photo-relay-{secrets.token_hex(16)}",
            destination=url,
            total_size=size,
            chunk_size=chunk,
        )
        response = await self.send(
            "MKCOL", f"{uploads}/{upload.upload_id}", "starting a chunked upload", headers=common
        )
        if response.status_code in (400, 404, 405, 501):
            self._chunking = False
            raise ChunkingUnavailable("no chunked upload")
        require(response, {201}, "starting a chunked upload", self.peer())
        self._chunking = True
        await self.progress.save(upload)
        return upload, 0

    async def _chunks_on_server(self, folder: str, upload: ChunkedUpload) -> int | None:
        """Contiguous complete chunks from 1, as the server confirms them.

        Sizes come from the upload folder's listing or, where it lists none, from a HEAD of
        each chunk. None when the upload expired or the server cannot say (the caller
        starts over). Later chunks are simply sent again over whatever is there; nothing
        is deleted chunk by chunk.
        """
        entries = await self.listing(folder, "looking at a chunked upload")
        if entries is None:
            return None
        sizes: dict[int, int | None] = {int(e.name): e.size for e in entries if e.name.isdigit()}
        done = 0
        while True:
            number = done + 1
            offset = done * upload.chunk_size
            expected = min(upload.chunk_size, upload.total_size - offset)
            if expected <= 0 or number not in sizes:
                break
            size = sizes[number]
            if size is None:
                size = await self._chunk_size(f"{folder}/{number:05d}")
                if size is None:
                    log.info("target.chunk_sizes_unknown upload=%s restart=true", upload.upload_id)
                    return None
            if size != expected:
                break
            done = number
        return done

    async def _chunk_size(self, url: str) -> int | None:
        """A chunk's size from HEAD, for servers whose listing has none; None if not told."""
        response = await self.send("HEAD", url, "looking at a part already sent")
        length = response.headers.get("Content-Length", "")
        return int(length) if response.status_code == 200 and length.isdigit() else None

    # -- the trash bin -------------------------------------------------------------------

    async def purge_deleted(self, url: str) -> None:
        """Remove our deleted temp copy from NextCloud's trash bin (files_trashbin's API).

        Only items whose original location is that exact path are removed; a server with
        no trash bin (404, 405, 501) is remembered and not asked again.
        """
        if self._trash is False:
            return
        endpoint = self.endpoint()
        assert endpoint.server_url is not None
        uid = endpoint.root_url.rpartition("/")[2]
        trash = f"{endpoint.server_url}/remote.php/dav/trashbin/{uid}/trash"
        root = unquote(urlsplit(endpoint.root_url).path)
        original = unquote(urlsplit(url).path)[len(root) :].strip("/")
        try:
            response = await self.call(
                "PROPFIND",
                trash,
                {207, 404, 405, 501},
                "looking in the trash bin",
                headers={"Depth": "1", "Content-Type": "application/xml; charset=utf-8"},
                content=TRASH_BODY,
            )
            if response.status_code != 207:
                self._trash = False
                return
            self._trash = True
            for entry in parse_multistatus(response.content, self.server):
                if entry.original_location and entry.original_location.strip("/") == original:
                    item = f"{trash}/{quote(entry.name)}"
                    await self.call("DELETE", item, {200, 204, 404}, "emptying our trash")
        except TargetError as exc:  # the copy is deleted; the trash only costs quota
            log.warning("target.trash_not_emptied reason=%s", exc.message)
