"""`/v1/events`: a WebSocket streaming journal entries and copy progress as JSON (admin).

The first message is a snapshot (`counts`, `progress`). With `?after=<journal id>` (the
page sends the id it was rendered at) the entries written since then are replayed, so
nothing falls in the gap between rendering and connecting. Then each journal entry
(`type: journal`, with the item's state and the new counts) and each progress report
(`type: progress` / `progress_done`). A client that falls behind is sent a fresh
snapshot instead of the events it missed. While the destination does not answer, each
message with counts also carries the server's `headline` (level and text), which names the
outage and the count: only the server can word it. Journal entries carry `when`, their
time in the owner's words ("today 21:38"). Auth: the admin token as Bearer, or the status
page's session cookie from the page's own origin; anything else is closed with 1008.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from app.clock import spoken
from app.observe import wording
from app.observe.events import Subscription
from app.services import Services
from app.web.access import Viewer, identify
from app.web.headline import headline

__all__ = ["router"]

router = APIRouter(tags=["status"])

POLICY_VIOLATION = 1008
# More than this many missed entries: the snapshot's counts must do (the page may reload).
REPLAY_LIMIT = 500


async def snapshot(services: Services) -> dict[str, Any]:
    counts = await services.monitoring.overview.acounts()
    return await _with_headline(
        services,
        {
            "type": "snapshot",
            "counts": counts,
            "progress": services.monitoring.progress.snapshot(),
            "relay": services.relay.status.state,
        },
    )


async def _with_headline(services: Services, message: dict[str, Any]) -> dict[str, Any]:
    """While the destination does not answer: `message` with the server's headline and the
    counts it was worded from. Otherwise `message` unchanged: the page words the rest."""
    if services.relay.status.down_since is None:
        return message
    overview = services.monitoring.overview
    snap = await overview.asnapshot(
        quiet_days=services.settings.device_quiet_days, recent=0, listed=0
    )
    verdict = headline(services, snap)
    return {
        **message,
        "counts": snap.counts,
        "headline": {"level": verdict.level, "text": verdict.headline},
    }


def _journal(services: Services, event: dict[str, Any]) -> dict[str, Any]:
    zone = wording.display_zone(services.settings.timezone)
    return {**event, "when": spoken(event["at"], zone)}


@router.websocket("/v1/events")
async def stream_events(websocket: WebSocket) -> None:
    services: Services = websocket.app.state.services
    if not isinstance(await identify(websocket, services), Viewer):
        await websocket.close(code=POLICY_VIOLATION)  # before accept: the handshake gets 403
        return
    hub = services.monitoring.hub
    subscription = hub.subscribe()
    try:
        await websocket.accept()
        await websocket.send_json(await snapshot(services))
        last_id = await _replay(websocket, services, websocket.query_params.get("after"))
        sending = asyncio.create_task(_send_events(websocket, subscription, services, last_id))
        listening = asyncio.create_task(_until_closed(websocket))
        done, pending = await asyncio.wait(
            {sending, listening}, return_when=asyncio.FIRST_COMPLETED
        )
        for task in pending:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
                await task
        for task in done:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                task.result()
    except WebSocketDisconnect:
        pass
    finally:
        hub.unsubscribe(subscription)


async def _replay(websocket: WebSocket, services: Services, after: str | None) -> int:
    """Send the journal entries after `after`; returns the last id sent (0 if none)."""
    if after is None or not after.isdigit():
        return 0
    overview = services.monitoring.overview
    entries = await overview.ajournal_since(int(after), REPLAY_LIMIT)
    if not entries:
        return 0
    latest = await _with_headline(services, {"counts": await overview.acounts()})
    for entry in entries:
        await websocket.send_json({**_journal(services, entry.as_event()), **latest})
    return entries[-1].id


async def _send_events(
    websocket: WebSocket, subscription: Subscription, services: Services, replayed_to: int
) -> None:
    while True:
        event = await subscription.next()
        if event.get("type") == "lagged":
            event = await snapshot(services)
        elif event.get("type") == "journal":
            if event["id"] <= replayed_to:
                continue  # already sent by the replay
            event = await _with_headline(services, _journal(services, event))
        await websocket.send_json(event)


async def _until_closed(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends, so a close is noticed at once."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
