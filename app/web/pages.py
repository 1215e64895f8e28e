"""The status page's routes: login and logout, the overview at `/`, one page per item,
thumbnails, and the retry buttons. Server-rendered, so everything works without JavaScript;
`static/live.js` only keeps the numbers fresh through `/v1/events`.
"""

from __future__ import annotations

import functools
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from app.hashing import is_sha256_hex
from app.observe import wording
from app.off_loop import off_loop
from app.phone.backup import BackupRuns
from app.phone.rules import NOTE_WORDS
from app.receipts import ItemState
from app.services import Services, ServicesDep
from app.store.deliveries import read_delivery_counts
from app.store.people import DestinationInfo, read_destinations
from app.web.access import Refused, Viewer, identify, refusal, same_origin, token_kind
from app.web.headline import headline, relay_problem
from app.web.page_state import page_state
from app.web.sessions import COOKIE_NAME, SessionStore

if TYPE_CHECKING:
    from fastapi.templating import Jinja2Templates

__all__ = ["STATIC_DIR", "router"]

WEB_DIR = Path(__file__).resolve().parent
STATIC_DIR = WEB_DIR / "static"


@functools.cache
def templates() -> Jinja2Templates:
    # Made for the first page, not at start-up: importing Jinja2 costs ~35 ms.
    from fastapi.templating import Jinja2Templates

    made = Jinja2Templates(directory=WEB_DIR / "templates")
    wording.install(made.env)
    return made


router = APIRouter(include_in_schema=False)

NO_STORE = {"Cache-Control": "no-store"}


def render(
    request: Request, name: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    return templates().TemplateResponse(
        request, name, {"request": request, **context}, status_code=status_code, headers=NO_STORE
    )


def to_login() -> RedirectResponse:
    return RedirectResponse("/login", status_code=303)


def refused_page(request: Request, refused: Refused) -> HTMLResponse:
    return render(request, "login.html", {"problem": refused.reason}, status_code=401)


async def viewer_or_response(request: Request, services: Services) -> Viewer | Response:
    who = await identify(request, services)
    if who is None:
        return to_login()
    if isinstance(who, Refused):
        return refused_page(request, who)
    return who


def form_allowed(viewer: Viewer, request: Request, csrf_token: str | None) -> bool:
    """A form post with the session must carry its CSRF token (the token header needs none)."""
    if viewer.session is None:
        return True
    return same_origin(request) and SessionStore.csrf_matches(viewer.session, csrf_token)


def zone_of(services: Services) -> Any:
    return wording.display_zone(services.settings.timezone)


# -- login -------------------------------------------------------------------------------


@router.get("/login")
async def read_login(request: Request, services: ServicesDep) -> Response:
    if isinstance(await identify(request, services), Viewer):
        return RedirectResponse("/", status_code=303)
    return render(request, "login.html", {"problem": None})


@router.post("/login")
async def create_session(
    request: Request, services: ServicesDep, token: Annotated[str, Form(max_length=512)] = ""
) -> Response:
    """Exchange the admin token for a session cookie; the token itself is never stored."""
    if not same_origin(request):
        return render(request, "login.html", {"problem": "Log in from this page."}, 403)
    kind = await token_kind(token.strip(), services) if token.strip() else "unknown"
    if kind != "admin":
        return refused_page(request, refusal(kind))
    sessions = page_state(request).sessions
    session_id, _ = sessions.open()
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        COOKIE_NAME,
        session_id,
        max_age=sessions.max_age_seconds,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/logout")
async def delete_session(
    request: Request,
    services: ServicesDep,
    csrf_token: Annotated[str | None, Form()] = None,
) -> Response:
    viewer = await viewer_or_response(request, services)
    if not isinstance(viewer, Viewer):
        return to_login()
    if not form_allowed(viewer, request, csrf_token):
        return render(request, "login.html", {"problem": "That form has expired."}, 403)
    page_state(request).sessions.close(request.cookies.get(COOKIE_NAME))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict")
    return response


# -- pages -------------------------------------------------------------------------------


async def not_captured_ledger(runs: BackupRuns) -> dict[str, Any]:
    """What the phones could not send in full, in plain words: counts and the newest photos."""
    counts = await off_loop(runs.ledger_counts)
    photos = await off_loop(runs.ledger, 50)
    return {
        "counts": [(NOTE_WORDS.get(note, note), n) for note, n in sorted(counts.items())],
        "photos": [
            {
                "name": row["name"],
                "device": row["device"],
                "notes": [NOTE_WORDS.get(n, n) for n in row["not_captured"].split(",")],
            }
            for row in photos
        ],
    }


@router.get("/")
async def read_status_page(request: Request, services: ServicesDep) -> Response:
    """At a glance: is everything safe? Counts, devices, queue, failures, newest items."""
    viewer = await viewer_or_response(request, services)
    if not isinstance(viewer, Viewer):
        return viewer
    settings = services.settings
    snapshot = await services.monitoring.overview.asnapshot(quiet_days=settings.device_quiet_days)
    progress = {p["sha256"]: p for p in services.monitoring.progress.snapshot()}
    not_sent = await off_loop(BackupRuns(services.db).failures)
    not_captured = await not_captured_ledger(BackupRuns(services.db))
    destination = wording.destination_name(services.target.kind)
    zone = zone_of(services)
    return render(
        request,
        "status.html",
        {
            "destinations": await destination_rows(services),
            "snap": snapshot,
            "verdict": headline(services, snapshot),
            "relay_problem": relay_problem(services),
            "destination": destination,
            "target": services.target.describe(),
            "progress": progress,
            "not_sent": not_sent,
            "not_captured": not_captured,
            "csrf_token": viewer.session.csrf_token if viewer.session else "",
            "zone": zone,
        },
    )


async def destination_rows(services: Services) -> list[dict[str, str]]:
    """With more than one destination: each one's person, place, relay and deliveries."""

    def read(
        conn: sqlite3.Connection,
    ) -> tuple[list[DestinationInfo], dict[int, dict[ItemState, int]]]:
        return read_destinations(conn), read_delivery_counts(conn)

    destinations, counts = await services.db.acall(read)
    if len(destinations) < 2:
        return []
    rows = []
    for info in destinations:
        relay = services.relay.by_destination.get(info.id)
        target = services.targets.get(info.id)
        told = ", ".join(
            f"{n} {wording.STATE_SHORT[s]}" for s, n in counts.get(info.id, {}).items() if n
        )
        rows.append(
            {
                "number": str(info.id),
                "person": info.person,
                "where": target.describe() if target else info.describe(),
                "relay": relay.status.state if relay else "starts after a restart",
                "counts": told or "nothing yet",
            }
        )
    return rows


@router.get("/items/{sha256}")
async def read_item_page(sha256: str, request: Request, services: ServicesDep) -> Response:
    """One file: its receipt and its journal in plain words."""
    viewer = await viewer_or_response(request, services)
    if not isinstance(viewer, Viewer):
        return viewer
    sha256 = sha256.lower()
    journal_id = await services.monitoring.overview.alast_journal_id()
    receipt = await services.state.aget_item(sha256) if is_sha256_hex(sha256) else None
    if receipt is None:
        return render(request, "missing.html", {"sha256": sha256[:80]}, status_code=404)
    journal = await services.state.ajournal_for(sha256)
    return render(
        request,
        "item.html",
        {
            "item": receipt,
            "journal": journal,
            "journal_id": journal_id,
            "target": services.target.describe(),
            "targets": {n: t.describe() for n, t in services.targets.items()},
            "progress": services.monitoring.progress.snapshot(),
            "csrf_token": viewer.session.csrf_token if viewer.session else "",
            "zone": zone_of(services),
        },
    )


@router.get("/thumbnails/{sha256}.jpg")
async def read_thumbnail(sha256: str, request: Request, services: ServicesDep) -> Response:
    viewer = await viewer_or_response(request, services)
    if not isinstance(viewer, Viewer):
        return Response(status_code=401)
    sha256 = sha256.lower()
    if not is_sha256_hex(sha256):
        return Response(status_code=404)
    thumbs = page_state(request).thumbnails
    path = await off_loop(thumbs.get, sha256, services.spool.path_for(sha256))
    if path is None:
        return FileResponse(STATIC_DIR / "photo.svg", media_type="image/svg+xml")
    return FileResponse(
        path, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"}
    )


# -- actions -----------------------------------------------------------------------------


@router.post("/retry")
async def retry_from_page(
    request: Request,
    services: ServicesDep,
    csrf_token: Annotated[str | None, Form()] = None,
    sha256: Annotated[str | None, Form(max_length=64)] = None,
    back: Annotated[str, Form(max_length=10)] = "page",
) -> Response:
    """Put one failed item (or all) back in the queue, then show where we came from."""
    viewer = await viewer_or_response(request, services)
    if not isinstance(viewer, Viewer):
        return viewer
    if not form_allowed(viewer, request, csrf_token):
        return render(request, "login.html", {"problem": "That form has expired; try again."}, 403)
    one = sha256.lower() if sha256 and is_sha256_hex(sha256.lower()) else None
    await services.state.arequeue_failed(one)
    services.relay.resume()
    return RedirectResponse(
        f"/items/{one}" if one and back == "item" else "/#failed", status_code=303
    )
