"""Health and status: `/healthz` for monitors, `/v1/status` for the owner (admin)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from app.api.deps import AdminDep, ServicesDep, StateDep
from app.observe.doctor import status_checks
from app.receipts import DeviceInfo, StatusReport

__all__ = ["router"]

router = APIRouter(tags=["status"])


class ConfigurationEntry(BaseModel):
    """One setting the running service uses, as `photo-relay config` shows it."""

    variable: str
    value: str = Field(description="Secrets are shown as `(set, hidden)`.")
    source: Literal[
        "default", "recorded by serve", "settings file", ".env file", "environment", "command line"
    ]


class ServiceStatus(StatusReport):
    configuration: list[ConfigurationEntry] = Field(
        default_factory=list,
        description="The settings in effect and where each came from (secrets hidden).",
    )


@router.get("/healthz")
async def read_health() -> dict[str, str]:
    """Answers while the service runs; no authentication."""
    return {"status": "ok"}


@router.get("/v1/status", dependencies=[AdminDep], response_model=ServiceStatus)
async def read_status(services: ServicesDep) -> ServiceStatus:
    """Counts per state, spool use, the oldest pending item, the last error, the relay."""
    summary = await services.state.asummary()
    relay = services.relay.status
    return ServiceStatus(
        **summary,
        spool_free_bytes=await services.spool.afree_bytes(),
        relay={
            "state": relay.state,
            "reason": relay.reason or services.target_problem,
            "paused_until": relay.paused_until.isoformat() if relay.paused_until else None,
            "down_since": relay.down_since.isoformat() if relay.down_since else None,
        },
        target=services.target.describe(),
        checks=await status_checks(
            services.settings, services.target.describe(), relay, services.target_problem
        ),
        configuration=[
            ConfigurationEntry(variable=o.variable, value=o.value, source=o.source)
            for o in services.settings.origins()
        ],
    )


@router.get("/v1/devices", dependencies=[AdminDep], response_model=list[DeviceInfo])
async def read_devices(state: StateDep) -> list[DeviceInfo]:
    """Every device, with when it was last seen (admin)."""
    return await state.alist_devices()
