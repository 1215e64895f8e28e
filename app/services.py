"""The running service's parts, built by `main.create_app` and handed to the routes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from app.config import Settings
from app.intake.ingest import Ingest
from app.observe.monitoring import Monitoring
from app.relay.worker import Relay
from app.store.db import Database
from app.store.spool import Spool
from app.store.state import State
from app.targets import Target

__all__ = ["Services", "ServicesDep", "services_of"]


@dataclass
class Services:
    settings: Settings
    db: Database
    state: State
    spool: Spool
    target: Target
    relay: Relay
    ingest: Ingest
    admin_token: str
    monitoring: Monitoring
    target_problem: str | None = None


def services_of(connection: HTTPConnection) -> Services:
    """The running parts, as `main`'s lifespan left them on the app (HTTP or WebSocket)."""
    services: Services = connection.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(services_of)]
