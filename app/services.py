"""The running service's parts, built by `main.create_app` and handed to the routes.

Also the one answer to "whose token is this?" (`Services.token_holder`), which the API's
and the status page's access checks both ask, so a wrong kind of token is named the same
way everywhere. Device tokens are looked up in `TokenCache`, which reads the database
only when a device changed (store/token_cache.py says why that is as strict as a read).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

from fastapi import Depends
from starlette.requests import HTTPConnection

from app.config import Settings
from app.intake.ingest import Ingest
from app.observe.monitoring import Monitoring
from app.relay.relays import Relays
from app.store.db import Database
from app.store.deliveries import DEFAULT_DESTINATION
from app.store.spool import Spool
from app.store.state import Device, State
from app.store.token_cache import TokenCache
from app.targets import Target
from app.tokens import hash_token, tokens_match

__all__ = ["Services", "ServicesDep", "TokenHolder", "services_of"]


@dataclass(frozen=True)
class TokenHolder:
    """Who a token belongs to: the admin, an active device (`device`), or nobody known."""

    kind: Literal["admin", "device", "unknown"]
    device: Device | None = None


@dataclass
class Services:
    settings: Settings
    db: Database
    state: State
    spool: Spool
    target: Target
    relay: Relays
    ingest: Ingest
    admin_token: str
    monitoring: Monitoring
    target_problem: str | None = None
    # Every destination's target by number, the configured one (`target`) included.
    targets: dict[int, Target] = field(default_factory=dict)
    tokens: TokenCache = field(init=False)

    def __post_init__(self) -> None:
        self.targets.setdefault(DEFAULT_DESTINATION, self.target)
        self.tokens = TokenCache(self.state)

    async def token_holder(self, token: str) -> TokenHolder:
        """Whose token this is; a revoked device's token belongs to nobody."""
        if tokens_match(token, self.admin_token):
            return TokenHolder("admin")
        device = await self.tokens.adevice_for_token_hash(hash_token(token))
        return TokenHolder("device", device) if device is not None else TokenHolder("unknown")


async def services_of(connection: HTTPConnection) -> Services:
    """The running parts, as `main`'s lifespan left them on the app (HTTP or WebSocket)."""
    services: Services = connection.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(services_of)]
