"""Dependencies shared by the routes: the parts they use, who is calling, the upload body.

Handlers ask for the narrow part they use (`IngestDep`, `StateDep`, ...) rather than the
whole `Services`; who is calling is a device (`DeviceDep`) or the admin (`AdminDep`), as
`Services.token_holder` says, so a refusal can name the kind of token that was sent.

Every dependency is `async def`, even the ones that only pick a part: FastAPI runs a plain
`def` dependency in a worker thread, a thread hop per dependency per request (about a
tenth of the event loop's time on 4 MiB photos: docs/PERFORMANCE.md).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.config import Settings
from app.errors import Unauthorized
from app.intake.body_timeout import idle_limited
from app.intake.ingest import Ingest
from app.intake.upload_body import UploadBody
from app.observe.monitoring import Monitoring
from app.relay.relays import Relays
from app.services import ServicesDep
from app.socket_body import EXTENSION as SOCKET_BODY
from app.store.state import Device, State

__all__ = [
    "AdminDep",
    "DeviceDep",
    "IngestDep",
    "MonitoringDep",
    "ReaderDep",
    "RelayDep",
    "ServicesDep",
    "SettingsDep",
    "StateDep",
    "UploadBody",
    "UploadBodyDep",
    "ViewerDep",
]


async def settings_of(services: ServicesDep) -> Settings:
    return services.settings


async def state_of(services: ServicesDep) -> State:
    return services.state


async def ingest_of(services: ServicesDep) -> Ingest:
    return services.ingest


async def relay_of(services: ServicesDep) -> Relays:
    return services.relay


async def monitoring_of(services: ServicesDep) -> Monitoring:
    return services.monitoring


SettingsDep = Annotated[Settings, Depends(settings_of)]
StateDep = Annotated[State, Depends(state_of)]
IngestDep = Annotated[Ingest, Depends(ingest_of)]
RelayDep = Annotated[Relays, Depends(relay_of)]
MonitoringDep = Annotated[Monitoring, Depends(monitoring_of)]


async def upload_body(request: Request, settings: SettingsDep) -> UploadBody:
    length = request.headers.get("content-length")
    idle = settings.upload_idle_timeout_seconds
    return UploadBody(
        chunks=idle_limited(request.stream(), idle),
        declared_size=int(length) if length and length.isdigit() else None,
        content_type=request.headers.get("content-type"),
        idle_timeout=idle,
        socket=request.scope.get("extensions", {}).get(SOCKET_BODY),
    )


UploadBodyDep = Annotated[UploadBody, Depends(upload_body)]


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(
            "This needs a token: send the header 'Authorization: Bearer <token>'. Create a "
            "device token with `photo-relay device add NAME`.",
            code="missing_token",
        )
    return token.strip()


def unknown_token() -> Unauthorized:
    return Unauthorized(
        "This device token is unknown or was revoked. Create a new one with "
        "`photo-relay device add NAME` and put it in the Shortcut.",
        code="invalid_token",
    )


async def require_device(request: Request, services: ServicesDep) -> Device:
    holder = await services.token_holder(bearer_token(request))
    if holder.device is not None:
        return holder.device
    if holder.kind == "admin":
        raise Unauthorized(
            "This is the admin token; uploads need a device token. Create one with "
            "`photo-relay device add NAME` and put it in the Shortcut.",
            code="device_token_required",
        )
    raise unknown_token()


async def require_admin(request: Request, services: ServicesDep) -> None:
    holder = await services.token_holder(bearer_token(request))
    if holder.kind == "admin":
        return
    if holder.device is not None:
        message = (
            f"This is the device token of {holder.device.name!r}; it lets a phone upload, "
            "not manage photo-relay. This needs the admin token: `photo-relay admin-token` "
            "prints it."
        )
    else:
        message = "This needs the admin token. `photo-relay admin-token` prints it."
    raise Unauthorized(message, code="admin_token_required")


async def require_reader(request: Request, services: ServicesDep) -> int | None:
    """Receipts may be read by any device (its own person's only) or by the admin (all);
    the person whose items the caller may see, None for the admin."""
    holder = await services.token_holder(bearer_token(request))
    if holder.kind == "unknown":
        raise unknown_token()
    return holder.device.person_id if holder.device is not None else None


DeviceDep = Annotated[Device, Depends(require_device)]
AdminDep = Depends(require_admin)
ReaderDep = Depends(require_reader)
# Whose items the caller may see: a person's id, or None (the admin sees every item).
ViewerDep = Annotated[int | None, Depends(require_reader)]
