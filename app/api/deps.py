"""Dependencies shared by the routes: the parts they use, who is calling, the upload body.

Handlers ask for the narrow part they use (`IngestDep`, `StateDep`, ...) rather than the
whole `Services`; who is calling is a device (`DeviceDep`) or the admin (`AdminDep`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from app.config import Settings
from app.errors import Unauthorized
from app.intake.body_timeout import idle_limited
from app.intake.ingest import Ingest
from app.observe.monitoring import Monitoring
from app.relay.worker import Relay
from app.services import ServicesDep
from app.store.state import Device, State
from app.tokens import hash_token, tokens_match

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
]


def settings_of(services: ServicesDep) -> Settings:
    return services.settings


def state_of(services: ServicesDep) -> State:
    return services.state


def ingest_of(services: ServicesDep) -> Ingest:
    return services.ingest


def relay_of(services: ServicesDep) -> Relay:
    return services.relay


def monitoring_of(services: ServicesDep) -> Monitoring:
    return services.monitoring


SettingsDep = Annotated[Settings, Depends(settings_of)]
StateDep = Annotated[State, Depends(state_of)]
IngestDep = Annotated[Ingest, Depends(ingest_of)]
RelayDep = Annotated[Relay, Depends(relay_of)]
MonitoringDep = Annotated[Monitoring, Depends(monitoring_of)]


@dataclass(frozen=True)
class UploadBody:
    """A request body on its way in: its pieces (each within the idle timeout) and framing."""

    chunks: AsyncIterator[bytes]
    declared_size: int | None
    content_type: str | None


def upload_body(request: Request, settings: SettingsDep) -> UploadBody:
    length = request.headers.get("content-length")
    return UploadBody(
        chunks=idle_limited(request.stream(), settings.upload_idle_timeout_seconds),
        declared_size=int(length) if length and length.isdigit() else None,
        content_type=request.headers.get("content-type"),
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


async def require_device(request: Request, services: ServicesDep) -> Device:
    token = bearer_token(request)
    device = await services.state.adevice_for_token_hash(hash_token(token))
    if device is None:
        raise Unauthorized(
            "This device token is unknown or was revoked. Create a new one with "
            "`photo-relay device add NAME` and put it in the Shortcut.",
            code="invalid_token",
        )
    return device


def require_admin(request: Request, services: ServicesDep) -> None:
    token = bearer_token(request)
    if not tokens_match(token, services.admin_token):
        raise Unauthorized(
            "This needs the admin token (a device token is not enough). "
            "`photo-relay admin-token` prints it.",
            code="admin_token_required",
        )


async def require_reader(request: Request, services: ServicesDep) -> None:
    """Receipts may be read by any device or by the admin."""
    token = bearer_token(request)
    if tokens_match(token, services.admin_token):
        return
    await require_device(request, services)


DeviceDep = Annotated[Device, Depends(require_device)]
AdminDep = Depends(require_admin)
ReaderDep = Depends(require_reader)
