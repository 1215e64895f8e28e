"""What the status page keeps while the service runs: its login sessions and thumbnails.

Built by `main`'s lifespan beside the services and left on the app, so that only `web`
knows of them; `page_state` hands them to a route or the live feed.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import HTTPConnection

from app.config import PageSettings
from app.web.sessions import SessionStore
from app.web.thumbnails import Thumbnails

__all__ = ["PageState", "page_state"]


@dataclass(frozen=True)
class PageState:
    sessions: SessionStore
    thumbnails: Thumbnails

    @classmethod
    def open(cls, settings: PageSettings) -> PageState:
        return cls(
            sessions=SessionStore(max_age_seconds=int(settings.session_hours * 3600)),
            thumbnails=Thumbnails(settings.thumbnails_dir),
        )


def page_state(connection: HTTPConnection) -> PageState:
    state: PageState = connection.app.state.page
    return state
