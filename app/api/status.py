"""Health and status: `/healthz` for monitors, `/v1/status` for the owner (admin)."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import AdminDep, ServicesDep, StateDep
from app.observe.doctor import status_checks
from app.receipts import DeviceInfo, StatusReport

__all__ = ["router"]

router = APIRouter(tags=["status"])


@router.get("/healthz")
async def read_health() -> dict[str, str]:
    """Answers while the service runs; no authentication."""
    return {"status": "ok"}


@router.get("/v1/status", dependencies=[AdminDep], response_model=StatusReport)
async def read_status(services: ServicesDep) -> StatusReport:
    """Counts per state, spool use, the oldest pending item, the last error, the relay."""
    summary = await services.state.asummary()
    relay = services.relay.status
    return StatusReport(
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
    )


@router.get("/v1/devices", dependencies=[AdminDep], response_model=list[DeviceInfo])
async def read_devices(state: StateDep) -> list[DeviceInfo]:
    """Every device, with when it was last seen (admin)."""
    return await state.alist_devices()
