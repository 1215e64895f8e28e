"""Health and status: `/healthz` for monitors, `/v1/status` for the owner (admin)."""

from __future__ import annotations

import sqlite3
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from app.api.deps import AdminDep, ServicesDep, StateDep
from app.observe.doctor import status_checks
from app.receipts import DeviceInfo, ItemState, StatusReport
from app.services import Services
from app.store.deliveries import read_delivery_counts
from app.store.overview import PersonLine, read_people
from app.store.people import DestinationInfo, read_destinations, read_people_devices

__all__ = ["router"]

router = APIRouter(tags=["status"])


class ConfigurationEntry(BaseModel):
    """One setting the running service uses, as `photo-relay config` shows it."""

    variable: str
    value: str = Field(description="Secrets are shown as `(set, hidden)`.")
    source: Literal[
        "default", "recorded by serve", "settings file", ".env file", "environment", "command line"
    ]


class DestinationStatus(BaseModel):
    """One destination: whose, where, its own relay's state, its deliveries per state."""

    destination: int
    person: str
    target: str
    relay: str
    reason: str | None
    down_since: str | None
    counts: dict[ItemState, int]


class DestinationHealth(BaseModel):
    """One of a person's destinations as their relay sees it (details in `destinations`)."""

    destination: int
    relay: str
    down_since: str | None


class PersonStatus(BaseModel):
    name: str
    devices: dict[str, str | None] = Field(description="Device -> when it was last seen.")
    counts: dict[ItemState, int] = Field(
        default_factory=dict, description="This person's deliveries, per state."
    )
    destinations: list[DestinationHealth] = Field(default_factory=list)
    last_backup: dict[str, str | None] = Field(
        default_factory=dict, description="Device -> when it last sent a file."
    )


class ServiceStatus(StatusReport):
    destinations: list[DestinationStatus] = Field(
        default_factory=list, description="Every destination of every person."
    )
    people: list[PersonStatus] = Field(default_factory=list)
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
    destinations, people = await _per_destination_and_person(services)
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
        destinations=destinations,
        people=people,
    )


async def _per_destination_and_person(
    services: Services,
) -> tuple[list[DestinationStatus], list[PersonStatus]]:
    """Every destination with its own relay's state and counts; every person's devices."""

    def read(
        conn: sqlite3.Connection,
    ) -> tuple[
        list[DestinationInfo],
        dict[int, dict[ItemState, int]],
        dict[str, list[tuple[str, str | None]]],
        list[PersonLine],
    ]:
        return (
            read_destinations(conn),
            read_delivery_counts(conn),
            read_people_devices(conn),
            read_people(conn),
        )

    destinations, counts, people, lines = await services.db.acall(read)
    rows = []
    for info in destinations:
        relay = services.relay.by_destination.get(info.id)
        target = services.targets.get(info.id)
        status = relay.status if relay else None
        rows.append(
            DestinationStatus(
                destination=info.id,
                person=info.person,
                target=target.describe() if target else info.describe(),
                relay=status.state if status else "not running",
                reason=status.reason if status else "added since the service started",
                down_since=status.down_since.isoformat() if status and status.down_since else None,
                counts=counts.get(info.id, dict.fromkeys(ItemState, 0)),
            )
        )
    health = {
        row.destination: DestinationHealth(
            destination=row.destination, relay=row.relay, down_since=row.down_since
        )
        for row in rows
    }
    return rows, [
        PersonStatus(
            name=line.name,
            devices=dict(people.get(line.name, [])),
            counts=line.counts,
            destinations=[health[d] for d in line.destinations if d in health],
            last_backup=line.last_backup,
        )
        for line in lines
    ]


@router.get("/v1/devices", dependencies=[AdminDep], response_model=list[DeviceInfo])
async def read_devices(state: StateDep) -> list[DeviceInfo]:
    """Every device, with when it was last seen (admin)."""
    return await state.alist_devices()
