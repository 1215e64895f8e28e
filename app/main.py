"""The application: `create_app(settings)` wires every part; the lifespan opens and closes them.

This is the only module that knows all the others. Start-up order: database (and its
migrations), spool (temp files from a crash removed), admin token, target check, relay.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIWebSocketRoute
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException

from app import __version__, log_redaction
from app.api import backup_runs, items, metrics, safe_to_delete, shortcut_files, status, uploads
from app.api.endpoint_hints import what_to_use_instead
from app.config import Settings
from app.durable_dirs import make_dir_durably
from app.errors import ApiError, ConfigurationError, TargetError
from app.intake.ingest import Ingest
from app.observe.monitoring import Monitoring
from app.off_loop import off_loop
from app.relay.relays import Relays
from app.relay.worker import Relay, RelayState
from app.request_limits import RequestLimits
from app.services import Services
from app.store.chunk_progress import ChunkProgress
from app.store.db import Database
from app.store.deliveries import DEFAULT_DESTINATION
from app.store.people import nextcloud_credentials_file, password_file, read_destinations
from app.store.spool import Spool
from app.store.state import State
from app.supervisor import SupervisedTask
from app.targets import Target, open_added_target, open_target
from app.tokens import ensure_admin_token
from app.web import live_feed, pages
from app.web.headers import SecurityHeaders
from app.web.page_state import PageState
from app.web.pages import STATIC_DIR

__all__ = ["WEBSOCKETS", "create_app"]

log = logging.getLogger("app")

# uvicorn's WebSocket implementation for /v1/events, named rather than "auto": "auto" took
# whatever happened to be installed, and a plain install had none (the live status page
# then got 404s). `websockets` is a runtime dependency for this.
WEBSOCKETS = "websockets-sansio"

# How long start-up waits for the destination's check. A server that accepts the connection
# but does not answer (a NAS waking up) held the whole start for the target timeout (60 s
# by default); after this the service starts anyway and the relay keeps trying.
TARGET_CHECK_AT_START_SECONDS = 5.0

# An object no row points to is the trace of a crash between link and commit; it is only
# removed once old enough that no other process (an import) can still be about to record it.
ORPHAN_AGE_SECONDS = 3600


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message}}


def remove_orphans(spool: Spool, state: State) -> int:
    removed = 0
    cutoff = time.time() - ORPHAN_AGE_SECONDS
    for bucket in spool.objects_dir.iterdir():
        names = [p.name for p in bucket.iterdir()]
        if not names:
            continue  # most of the 256 shard folders, in a young spool
        known = state.check(names)
        for name in names:
            path = bucket / name
            if name not in known and path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                removed += 1
    return removed


def added_targets(settings: Settings, db: Database) -> dict[int, Target]:
    """A target for each destination added with `photo-relay destination add`."""
    targets: dict[int, Target] = {}
    for info in db.call(read_destinations):
        if info.kind == "settings" or info.location is None:
            continue
        secret = password_file(settings.data_dir, info.id)
        password = secret.read_text().strip() if secret.exists() else None
        if password:
            log_redaction.add_secret(password)
        targets[info.id] = open_added_target(
            settings,
            info.kind,
            info.location,
            info.user,
            password,
            ChunkProgress(db, info.id),
            folder=info.folder,
            credentials_file=nextcloud_credentials_file(settings.data_dir, info.person),
        )
    return targets


async def open_services(settings: Settings) -> Services:
    await off_loop(make_dir_durably, settings.data_dir)  # the database and spool live in it
    db = await off_loop(Database, settings.database_path)  # migrations write and fsync
    db.guard_event_loop()  # from here on, a database call on the loop is a bug that raises
    state = State(db)
    spool = Spool(settings.spool_dir, min_free_bytes=settings.min_free_bytes)
    leftovers = await spool.aprepare()
    orphans = await off_loop(remove_orphans, spool, state)
    if leftovers or orphans:
        log.info("spool.cleaned temp_files=%d orphans=%d", leftovers, orphans)
    admin_token = (
        settings.admin_token.get_secret_value()
        if settings.admin_token
        else await off_loop(ensure_admin_token, settings.admin_token_file)  # may write, fsync
    )
    log_redaction.add_secret(admin_token)
    target = open_target(settings, ChunkProgress(db))
    monitoring = Monitoring.open(settings.page, db)
    targets = {DEFAULT_DESTINATION: target, **await off_loop(added_targets, settings, db)}
    relay = Relays(
        {
            number: Relay(
                settings.relay,
                state,
                spool,
                each,
                progress=monitoring.progress,
                destination=number,
            )
            for number, each in targets.items()
        }
    )
    ingest = Ingest(settings.intake, spool, state, relay.wake)
    services = Services(
        settings, db, state, spool, target, relay, ingest, admin_token, monitoring, targets=targets
    )
    try:
        await asyncio.wait_for(target.check(), TARGET_CHECK_AT_START_SECONDS)
    except TimeoutError:
        log.warning(
            "target.slow_to_answer seconds=%s: starting anyway, the relay will keep trying",
            TARGET_CHECK_AT_START_SECONDS,
        )
    except ConfigurationError as exc:
        services.target_problem = exc.message
        log.error("target.problem %s", exc.message)
    except TargetError as exc:
        # Credentials refused or target full: the relay starts paused, so `photo-relay
        # retry` (after fixing the cause) resumes it without a restart.
        await relay.pause(exc)
        log.error("target.problem %s", exc.message)
    return services


def create_app(settings: Settings) -> FastAPI:
    # Also here, not only in the command: a test or an embedding server logs through it too.
    log_redaction.install()
    if settings.target_password is not None:
        log_redaction.add_secret(settings.target_password.get_secret_value())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = await open_services(settings)
        app.state.services = services
        app.state.page = PageState.open(settings.page)
        await services.monitoring.start(services.relay.wake)
        relay_task = SupervisedTask("relay", services.relay.run)
        if services.target_problem is None:
            relay_task.start()
        else:
            services.relay.status.state = RelayState.PAUSED
            services.relay.status.reason = services.target_problem
        try:
            yield
        finally:
            await relay_task.stop()
            await services.monitoring.stop()
            for each in services.targets.values():
                await each.close()
            await off_loop(services.db.close)

    # /docs and /redoc with Swagger UI's and ReDoc's files served from the installed package
    # (under /static-offline-docs), not a CDN: at home the service may have no internet.
    # No validator: Swagger UI would send the schema to validator.swagger.io.
    app = FastAPIOffline(
        title="photo-relay",
        version=__version__,
        description="Gets an iPhone's photos safely into your own NextCloud.",
        lifespan=lifespan,
        swagger_ui_parameters={"validatorUrl": None},
    )

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse(error_body(exc.code, exc.message), exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error.get('loc', ()))}: {error.get('msg')}"
            for error in exc.errors()
        )
        return JSONResponse(
            error_body("invalid_request", f"The request is not valid: {problems}."), 422
        )

    websockets = [r.path for r in live_feed.router.routes if isinstance(r, APIWebSocketRoute)]

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = what_to_use_instead(
            exc.status_code, request.method, request.url.path, app.openapi(), websockets
        )
        return JSONResponse(
            error_body(code, message or str(exc.detail)), exc.status_code, headers=exc.headers
        )

    app.add_middleware(RequestLimits)  # header and JSON body limits
    app.include_router(uploads.router)
    app.include_router(items.router)
    app.include_router(safe_to_delete.router)
    app.include_router(status.router)
    # The status page: its live feed, the metrics, and the page itself.
    app.include_router(live_feed.router)
    app.include_router(metrics.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(SecurityHeaders)
    app.include_router(backup_runs.router)
    app.include_router(shortcut_files.router)
    return app
