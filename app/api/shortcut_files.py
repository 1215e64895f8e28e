"""GET /shortcuts/: the bundled Shortcut files, unsigned, for anyone on the network to fetch.

No token is needed: the files hold no secret (the token is typed in on the phone).
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from app.errors import NotFound
from app.phone.shortcut import build_all, shortcut_bytes

__all__ = ["router"]

router = APIRouter(tags=["shortcuts"])

# The unsigned files are XML property lists; `shortcuts sign` turns them into importable ones.
SHORTCUT_MEDIA_TYPE = "application/x-plist"


@router.get(
    "/shortcuts/{filename}",
    response_class=Response,
    responses={200: {"content": {SHORTCUT_MEDIA_TYPE: {}}, "description": "Unsigned shortcut"}},
)
async def read_shortcut_file(filename: str) -> Response:
    """The bundled shortcuts, unsigned (sign on a Mac before importing); no token needed."""
    built = build_all()
    if filename not in built:
        raise NotFound(
            f"No shortcut called {filename!r}; there are: {', '.join(sorted(built))}.",
            code="unknown_shortcut",
        )
    return Response(
        shortcut_bytes(built[filename]),
        media_type=SHORTCUT_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
