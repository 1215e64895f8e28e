"""`photo-relay nextcloud check`: can photo-relay work with this NextCloud, and how?

Reads status.php, checks the login, reads capabilities and DAV features, writes and
removes a probe file through a NextCloud target (the relay's own, or one set up for the
login being checked) with the same write probe as `doctor`, then says in plain words what
the server supports (chunked upload, capture time, server-side hash) and what the relay
will therefore do. The first problem is raised as an `app.errors` type whose message says
how to fix it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pydantic import SecretStr

from app.errors import ConfigurationError
from app.targets.base import Target
from app.targets.nextcloud.api import Capabilities, NextcloudApi
from app.targets.probe import probe_write

__all__ = [
    "CheckPlan",
    "ProbeOutcome",
    "describe_support",
    "run_check",
]

MiB = 1024**2
CHECKSUM_UPDATE_FEATURE = "nextcloud-checksum-update"


@dataclass(frozen=True)
class CheckPlan:
    """What to check: a server, the login to use and where that login came from."""

    server: str
    login_name: str | None
    app_password: SecretStr | None
    credentials_source: str
    folder: str = ""
    chunk_threshold_bytes: int = 50 * MiB
    chunk_bytes: int = 10 * MiB


# Verification methods, named as the targets name them in receipts (Verification.method).
SERVER_HASH = "size+x-hash-sha256"
SERVER_REHASH = "size+recalculated-sha256"
READ_BACK = "size+sha256-readback"
SIZE_ONLY = "size-only"
METHOD_WORDS = {
    SERVER_HASH: "by the server's SHA-256",
    SERVER_REHASH: "by the server re-hashing the stored file",
    READ_BACK: "by reading it back",
    SIZE_ONLY: "by its size only",
}


@dataclass(frozen=True)
class ProbeOutcome:
    """What the write probe showed."""

    path: str
    method: str  # a Verification.method, e.g. SERVER_HASH
    mtime_accepted: bool | None  # None: the target cannot tell (e.g. a local folder)
    fallback: bool  # probed through a target set up for the check, not the relay's own

    @property
    def verified_by(self) -> str:
        return METHOD_WORDS.get(self.method, self.method)


async def run_check(
    plan: CheckPlan, *, say: Callable[[str], None], target: Target, relay_target: bool = True
) -> None:
    """Check everything in order, telling `say` each finding; raise at the first problem.

    The probe goes through `target`: the relay's configured one (`relay_target`), or one
    the caller set up for the plan's server and login, which writes exactly as the relay's
    NextCloud target does.
    """
    async with NextcloudApi(
        plan.server, login_name=plan.login_name, app_password=plan.app_password
    ) as api:
        status = await api.require_usable()
        say(
            f"{status.product_name} {status.version_string} at {api.server}: reachable, "
            "installed, not in maintenance mode."
        )
        if plan.login_name is None or plan.app_password is None:
            raise ConfigurationError(
                f"No credentials for {api.server}. Run `photo-relay nextcloud login "
                f"{api.server}` (or set PHOTO_RELAY_TARGET_USER and PHOTO_RELAY_TARGET_PASSWORD)."
            )
        user_id = await api.current_user_id()
        say(
            f"Login {plan.login_name!r} accepted (user id {user_id!r}); credentials from "
            f"{plan.credentials_source}."
        )
        capabilities = await api.capabilities()
        if capabilities.bruteforce_delay_ms:
            say(
                f"Note: NextCloud delays logins from this address by "
                f"{capabilities.bruteforce_delay_ms} ms after earlier failed logins."
            )
        features = await api.dav_features(user_id)
    # probe_write only creates sub-folders; the target's base folder may be new too.
    await target.ensure_folder(plan.folder)
    if relay_target:
        say(f"Destination: {target.describe()}; the folder is there.")
    proof = await probe_write(target, plan.folder)
    outcome = ProbeOutcome(
        proof.path, proof.method, proof.mtime_accepted, fallback=not relay_target
    )
    say(f"Write probe: wrote, verified ({outcome.verified_by}) and removed {outcome.path}.")
    if outcome.fallback:
        say(
            "  (checked with a NextCloud target set up for this login, not the relay's own "
            "target: PHOTO_RELAY_TARGET is not `nextcloud` for this server)"
        )
    say("")
    say("What this NextCloud supports, and what photo-relay will do:")
    for line in describe_support(plan, capabilities, features, outcome):
        say(f"  {line}")
    say("")
    say("All good: photo-relay can relay photos to this NextCloud.")


def describe_support(
    plan: CheckPlan,
    capabilities: Capabilities,
    features: frozenset[str] | None,
    probe: ProbeOutcome,
) -> list[str]:
    """Plain-language lines: chunked upload, capture time, server-side hash, forbidden names."""
    lines = []
    if capabilities.chunked_upload:
        lines.append(
            f"Chunked upload: yes. Files over {_mb(plan.chunk_threshold_bytes)} go in "
            f"{_mb(plan.chunk_bytes)} chunks, resumable after a dropped connection or a "
            "restart."
        )
    else:
        lines.append(
            "Chunked upload: no. Every file goes in one request; a very large video may hit "
            "the server's size or time limits and is then retried."
        )
    if probe.mtime_accepted is False:
        lines.append(
            "Capture time (mtime): no, the server ignored X-OC-Mtime. Files show the time "
            "they were uploaded; the folders still follow the capture date."
        )
    else:
        lines.append(
            "Capture time (mtime): yes. Each file gets its capture time as its modification "
            "time in NextCloud."
        )
    rehash = features is not None and CHECKSUM_UPDATE_FEATURE in features
    if probe.method == SERVER_HASH:
        lines.append(
            "Server-side hash: yes, NextCloud computes SHA-256 while storing. Content is "
            "verified by the server's SHA-256; nothing is downloaded again."
        )
    elif probe.method == SERVER_REHASH or (probe.fallback and rehash):
        lines.append(
            "Server-side hash: on request (NextCloud re-hashes a stored file). Content is "
            "verified by the server's SHA-256 after each upload."
        )
    elif probe.method == READ_BACK:
        lines.append(
            "Server-side hash: no. Content is verified by reading each file back and hashing "
            "it (costs one download per file)."
        )
    elif probe.method == SIZE_ONLY:
        lines.append(
            "Server-side hash: no, and reading back is turned off: only the size of each "
            "copy is checked, not its content."
        )
    else:
        lines.append(f"Content is checked by the target's own method: {probe.verified_by}.")
    forbidden = [
        f"{kind} {' '.join(values)}"
        for kind, values in (
            ("characters", capabilities.forbidden_characters),
            ("extensions", capabilities.forbidden_extensions),
            ("names", capabilities.forbidden_filenames),
        )
        if values
    ]
    if forbidden:
        lines.append(f"Not allowed in file names here: {'; '.join(forbidden)}.")
    return lines


def _mb(size: int) -> str:
    # People read "50 MB" more easily than "50 MiB"; the setting itself is exact.
    return f"{round(size / MiB, 1):g} MB"
