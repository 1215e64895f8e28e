"""Receipts: read one item, its journal, or check which hashes are already here."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import AdminDep, RelayDep, StateDep, ViewerDep
from app.errors import NotFound
from app.hashing import checked_sha256
from app.receipts import CheckRequest, CheckResult, JournalEntry, Receipt
from app.store.state import State

__all__ = ["router"]

router = APIRouter(tags=["items"])


async def _receipt_or_404(state: State, sha256: str, viewer: int | None) -> Receipt:
    # Another person's item answers as never received: a device cannot probe for it.
    receipt = await state.aget_item(checked_sha256(sha256), person=viewer)
    if receipt is None:
        raise NotFound(f"No file with SHA-256 {sha256} has been received.", code="unknown_item")
    return receipt


@router.get("/v1/items/{sha256}", response_model=Receipt)
async def read_item(sha256: str, state: StateDep, viewer: ViewerDep) -> Receipt:
    """The receipt of a file we received from the caller's person (the admin: any), or 404."""
    return await _receipt_or_404(state, sha256, viewer)


@router.head("/v1/items/{sha256}")
async def read_item_head(sha256: str, state: StateDep, viewer: ViewerDep) -> None:
    """200 if the file was received, else 404 (no body either way)."""
    await _receipt_or_404(state, sha256, viewer)


@router.get("/v1/items/{sha256}/journal", response_model=list[JournalEntry])
async def read_item_journal(sha256: str, state: StateDep, viewer: ViewerDep) -> list[JournalEntry]:
    """Everything that happened to one file, oldest first, in plain words."""
    receipt = await _receipt_or_404(state, sha256, viewer)
    return await state.ajournal_for(receipt.sha256)


@router.post("/v1/items/check", response_model=CheckResult)
async def check_items(request: CheckRequest, state: StateDep, viewer: ViewerDep) -> CheckResult:
    """Which of these hashes are already here (and in which state), and which are missing.

    A device learns only of its own person's files: another person's count as missing."""
    hashes = [checked_sha256(h) for h in request.sha256]
    known = await state.acheck(hashes, person=viewer)
    missing = [h for h in dict.fromkeys(hashes) if h not in known]
    return CheckResult(known=known, missing=missing)


@router.post("/v1/items/retry", dependencies=[AdminDep])
async def retry_failed_items(state: StateDep, relay: RelayDep) -> dict[str, int]:
    """Put every failed item back in the queue (admin)."""
    count = await state.arequeue_failed()
    relay.resume()
    return {"requeued": count}
