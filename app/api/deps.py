"""Dependencies shared by the routes: the services, and who is calling (device or admin)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import Depends, Request

from app.errors import Unauthorized
from app.services import Services
from app.state import Device
from app.tokens import hash_token, tokens_match

__all__ = ["AdminDep", "DeviceDep", "ReaderDep", "ServicesDep"]


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


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
    device = await asyncio.to_thread(services.state.device_for_token_hash, hash_token(token))
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
