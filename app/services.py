"""The running service's parts, built by `main.create_app` and handed to the routes."""

from __future__ import annotations

from dataclasses import dataclass

from app.config import Settings
from app.db import Database
from app.ingest import Ingest
from app.monitoring import Monitoring
from app.relay import Relay
from app.spool import Spool
from app.state import State
from app.targets import Target

__all__ = ["Services"]


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
