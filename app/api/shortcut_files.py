"""GET /shortcuts/: the install page and the bundled Shortcut files, for anyone at home.

No token is needed: the files hold no secret (the token is typed in on the phone). When a
maintainer has committed a signed copy beside an unsigned file (`shortcuts sign --mode
anyone`, see shortcuts/README.md), the page offers that one, which iOS can import.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from urllib.parse import quote

import segno
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from app.api.deps import SettingsDep
from app.errors import NotFound
from app.phone.shortcut import (
    BACKUP_FILE,
    DEFAULT_ALBUM,
    FREE_UP_FILE,
    SHARE_FILE,
    build_all,
    shortcut_bytes,
)

__all__ = ["SHORTCUTS_DIR", "router", "signed_name"]

router = APIRouter(tags=["shortcuts"])

# The unsigned files are XML property lists; `shortcuts sign` turns them into importable ones.
SHORTCUT_MEDIA_TYPE = "application/x-plist"
SIGNED_MEDIA_TYPE = "application/octet-stream"
SHORTCUTS_DIR = Path(__file__).resolve().parents[2] / "shortcuts"


def signed_name(filename: str) -> str:
    """Where a signed copy of `filename` is committed: 'X.shortcut' -> 'X (signed).shortcut'."""
    return filename.removesuffix(".shortcut") + " (signed).shortcut"


def signed_copy(filename: str, folder: Path) -> Path | None:
    path = folder / signed_name(filename)
    return path if path.is_file() else None


def _link(filename: str, folder: Path) -> str:
    signed = signed_copy(filename, folder)
    name = signed.name if signed else filename
    note = (
        "signed: tap it on the iPhone, then <b>Add Shortcut</b>"
        if signed
        else "unsigned: sign it on a Mac first, or build it by hand (see the guide)"
    )
    return f'<a href="/shortcuts/{quote(name)}">{escape(name)}</a> ({note})'


def install_page(server: str, folder: Path, album: str = DEFAULT_ALBUM) -> str:
    """The page a person who never used Shortcuts follows: import, first run, automation."""
    qr = segno.make(server, error="m").svg_inline(scale=5)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Install the photo-relay Shortcuts</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 44rem; margin: 2rem auto;">
<h1>Back up your iPhone photos to photo-relay</h1>
<p>This server's address, as this browser reached it: <code>{escape(server)}</code>.
Scan the code with the iPhone's camera to open this page on the phone (if the address
above is <code>localhost</code>, open the page with the computer's network address
instead).</p>
{qr}
<h2>1. Get the shortcuts</h2>
<ul>
<li>Backup (runs by itself at home): {_link(BACKUP_FILE, folder)}</li>
<li>Share sheet (send anything by hand): {_link(SHARE_FILE, folder)}</li>
<li>Free up space (by hand only, never in an automation): {_link(FREE_UP_FILE, folder)}</li>
</ul>
<p>Since iOS 15 only signed files import. Without a signed file, build the shortcuts by
hand with the recipe in <code>shortcuts/README.md</code> (about 15 minutes).</p>
<h2>2. Answer the import questions</h2>
<ol>
<li><b>Address of your photo-relay</b>: <code>{escape(server)}</code> (no slash at the end).</li>
<li><b>Device token</b>: on the server run <code>photo-relay device add my-iphone</code> and
paste what it prints.</li>
<li><b>Name of your home Wi-Fi</b> (backup only): exactly as Settings &rsaquo; Wi-Fi shows it.</li>
</ol>
<h2>3. Run it once by hand</h2>
<p>On your home Wi-Fi, phone unlocked: open Shortcuts, tap <b>Back up to photo-relay</b>,
and answer every question with <b>Always Allow</b> (photos, "connect to", "send N items").
A locked phone cannot answer them later. Then turn on Settings &rsaquo; Shortcuts &rsaquo;
Advanced &rsaquo; <b>Allow Sharing Large Amounts of Data</b>.</p>
<h2>4. Make it automatic</h2>
<ol>
<li>Shortcuts &rsaquo; Automation &rsaquo; + &rsaquo; <b>Wi-Fi</b>: your home network,
Is Connected.</li>
<li><b>Run Immediately</b>, and turn on <b>Run After Connection Interruption</b>.</li>
<li>Next, then <b>select "Back up to photo-relay"</b> (do not add actions to a blank
automation: iOS stops those after about 4 minutes).</li>
<li>After every iOS update, check the automation is still "Run Immediately".</li>
</ol>
<h2>5. The &ldquo;{escape(album)}&rdquo; album</h2>
<p>Create an empty album named <b>{escape(album)}</b> in Photos once (Albums &rsaquo; + &rsaquo;
New Album; skip adding photos). The backup adds a photo to it only once its copy at home is
checked and verified, so the album shows which photos are really safe.</p>
<h2>6. Free up space</h2>
<p>Run <b>Free up space</b> by hand when the phone is full. It looks only at photos of the
album taken more than the configured number of days ago, reads each one again, and asks
photo-relay; only a photo whose verified copy is found at the destination right then is
offered. Live Photos, edited photos and favourites stay. iOS asks before deleting and
keeps deleted photos 30 days in Recently Deleted. Never put it in an automation.</p>
<h2>What is backed up</h2>
<p>Unedited photos and videos byte for byte; for an edited photo only its edited version;
for a Live Photo only the still; photos of Shared Albums you follow too. A photo that cannot
be sent (iCloud download fails, too large) is named in the notification and tried again
later; the others are not held up.</p>
</body></html>"""


@router.get("/shortcuts/", response_class=HTMLResponse)
async def read_install_page(request: Request, settings: SettingsDep) -> HTMLResponse:
    """How to install the shortcuts, with links, the setup steps and a QR code of the server."""
    server = str(request.base_url).rstrip("/")
    return HTMLResponse(install_page(server, SHORTCUTS_DIR, settings.shortcut_safe_album))


@router.get(
    "/shortcuts/{filename}",
    response_class=Response,
    responses={200: {"content": {SHORTCUT_MEDIA_TYPE: {}}, "description": "A shortcut file"}},
)
async def read_shortcut_file(filename: str, settings: SettingsDep) -> Response:
    """A bundled shortcut: generated (unsigned, with this service's album name), or the
    signed copy when one is committed (that one carries the default album name)."""
    built = build_all(settings.shortcut_safe_album)
    if filename not in built:
        signed = next(
            (
                copy
                for name in built
                if signed_name(name) == filename
                and (copy := signed_copy(name, SHORTCUTS_DIR)) is not None
            ),
            None,
        )
        if signed is None:
            raise NotFound(
                f"No shortcut called {filename!r}; there are: {', '.join(sorted(built))}.",
                code="unknown_shortcut",
            )
        return FileResponse(signed, media_type=SIGNED_MEDIA_TYPE, filename=filename)
    return Response(
        shortcut_bytes(built[filename]),
        media_type=SHORTCUT_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
