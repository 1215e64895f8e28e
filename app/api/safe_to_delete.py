"""POST /v1/items/safe-to-delete: may the sender's copy of these files be deleted?

The same two proofs the "Free up space" shortcut relies on, for any client: every
delivery of exactly these bytes is verified, and a fresh check at the destination made
during this request still finds each copy (`relay.recheck`). A device token may ask about
every hash of the installation (one household, one library); the admin token too.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from app.api.deps import ServicesDep, ViewerDep
from app.hashing import checked_sha256
from app.relay.recheck import safe_to_delete

__all__ = ["router"]

router = APIRouter(tags=["items"])

# Each hash may cost a read-back of the whole file at the destination.
MAX_HASHES = 100


class SafeToDeleteRequest(BaseModel):
    sha256: list[str] = Field(
        min_length=1,
        max_length=MAX_HASHES,
        description=f"SHA-256 of each file (lowercase hex), at most {MAX_HASHES}.",
    )


class SafeToDeleteAnswer(BaseModel):
    sha256: str = Field(description="The hash asked about.")
    safe: bool = Field(
        description="True only if every delivery of these exact bytes is verified and the "
        "destination still holds each copy now (checked during this request)."
    )
    reason: str = Field(description="Why, in plain words (what is missing when not safe).")


class SafeToDeleteResult(BaseModel):
    answers: list[SafeToDeleteAnswer] = Field(description="One answer per hash, in order.")
    safe: int = Field(description="How many of the answers are safe.")


@router.post("/v1/items/safe-to-delete", response_model=SafeToDeleteResult)
async def check_safe_to_delete(
    request: SafeToDeleteRequest, services: ServicesDep, viewer: ViewerDep
) -> SafeToDeleteResult:
    """Per hash: safe to delete the sender's copy, or not and why. Nothing is changed."""
    hashes = [checked_sha256(h) for h in request.sha256]
    answers = await safe_to_delete(services.db, services.targets, hashes, person=viewer)
    return SafeToDeleteResult(
        answers=[
            SafeToDeleteAnswer(sha256=a.sha256, safe=a.safe, reason=a.reason) for a in answers
        ],
        safe=sum(a.safe for a in answers),
    )
