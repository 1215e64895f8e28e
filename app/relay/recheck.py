"""Is it safe to delete the phone's copy? Every delivery verified, and found again now.

The answer a person may act on irreversibly (iOS empties Recently Deleted after 30 days),
so it takes two proofs: the store says every delivery of exactly these bytes was verified
(`store.deliveries`), and a fresh check at the destination, made now with the target's own
`verify` (size, and the server's checksum or a read-back), still finds each copy. A copy
someone deleted or changed in NextCloud by hand after the backup fails the second.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from app.errors import ConfigurationError, TargetError, VerificationFailed
from app.off_loop import off_loop
from app.store.db import Database
from app.store.deliveries import DeliveryProof, read_delivery_proofs
from app.targets.base import Target

__all__ = ["SafeAnswer", "recheck", "safe_to_delete"]

VERIFIED_NOW = "verified at the destination, and found there again just now"


@dataclass(frozen=True)
class SafeAnswer:
    """`safe` only with both proofs; `missing`: the destination no longer holds the copy."""

    sha256: str
    safe: bool
    reason: str
    missing: bool = False


async def recheck(targets: Mapping[int, Target], proof: DeliveryProof) -> SafeAnswer:
    """Check each verified delivery at its destination again, now."""
    if not proof.verified:
        return SafeAnswer(proof.sha256, False, proof.reason)
    for delivery in proof.deliveries:
        target = targets.get(delivery.destination)
        if target is None:
            return SafeAnswer(
                proof.sha256, False, "one of its destinations is not in use by the service now"
            )
        try:
            await target.verify(delivery.path, size=delivery.size, sha256=proof.sha256)
        except VerificationFailed as error:
            return SafeAnswer(
                proof.sha256,
                False,
                f"its copy at the destination is gone or changed: {error}",
                missing=True,
            )
        except (TargetError, ConfigurationError) as error:
            return SafeAnswer(
                proof.sha256, False, f"the destination could not be checked just now: {error}"
            )
    return SafeAnswer(proof.sha256, True, VERIFIED_NOW)


async def safe_to_delete(
    db: Database,
    targets: Mapping[int, Target],
    hashes: Sequence[str],
    *,
    person: int | None = None,
) -> list[SafeAnswer]:
    """One answer per hash (in order, duplicates answered once each time they appear);
    with `person`, another person's file answers as never received."""
    proofs = await off_loop(read_delivery_proofs, db, hashes, person)
    answers: dict[str, SafeAnswer] = {}
    for sha256 in proofs:
        answers[sha256] = await recheck(targets, proofs[sha256])
    return [answers[sha256] for sha256 in hashes]
