"""`photo-relay nextcloud check`: can photo-relay work with this NextCloud, and how?

Reads status.php, checks the login, reads capabilities and DAV features, writes and
removes a probe file, then says in plain words what the server supports (chunked upload,
capture time, server-side hash) and what the relay will therefore do. The first problem
is raised as an `app.errors` type whose message says how to fix it.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from xml.etree import ElementTree

from pydantic import SecretStr

from app.errors import ConfigurationError, TargetFull, VerificationFailed
from app.targets.base import Target
from app.targets.nextcloud.api import Capabilities, NextcloudApi
from app.targets.probe import PROBE_PREFIX, probe_write

__all__ = [
    "CheckPlan",
    "ProbeOutcome",
    "describe_support",
    "fallback_webdav_probe",
    "run_check",
]

log = logging.getLogger(__name__)

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
    mtime_accepted: bool | None  # None: not observable (the relay's target keeps headers)
    fallback: bool

    @property
    def verified_by(self) -> str:
        return METHOD_WORDS.get(self.method, self.method)


async def run_check(
    plan: CheckPlan, *, say: Callable[[str], None], target: Target | None = None
) -> None:
    """Check everything in order, telling `say` each finding; raise at the first problem.

    With `target` (the configured NextCloud target) the probe goes through it, exactly as
    the relay writes; without, through `fallback_webdav_probe`.
    """
    async with NextcloudApi(
        plan.server, login_name=plan.login_name, app_password=plan.app_password
    ) as api:
        status = await api.status()
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
        if target is not None:
            # probe_write only creates sub-folders; the target's base folder may be new too.
            await target.ensure_folder(plan.folder)
            say(f"Destination: {target.describe()}; the folder is there.")
            proof = await probe_write(target, plan.folder)
            outcome = ProbeOutcome(proof.path, proof.method, None, fallback=False)
        else:
            outcome = await fallback_webdav_probe(api, user_id, plan.folder)
        say(f"Write probe: wrote, verified ({outcome.verified_by}) and removed {outcome.path}.")
        if outcome.fallback:
            say(
                "  (checked with photo-relay's minimal WebDAV probe, not the relay's own "
                "NextCloud target: PHOTO_RELAY_TARGET is not `nextcloud` for this server)"
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


async def fallback_webdav_probe(api: NextcloudApi, user_id: str, folder: str) -> ProbeOutcome:
    """FALLBACK ONLY: a minimal PUT / PROPFIND / GET / DELETE probe with NextCloud's headers.

    Used while the configured target is not this NextCloud (then the relay's own target
    cannot be asked). It records what the server showed: `X-OC-MTime: accepted` and
    `X-Hash-SHA256` in reply to our `X-OC-Mtime` and `X-Hash: sha256`.
    """
    content = f"photo-relay write probe {time.time():.0f} {secrets.token_hex(8)}\n".encode()
    sha256 = hashlib.sha256(content).hexdigest()
    segments = [part for part in folder.strip("/").split("/") if part]
    for depth in range(1, len(segments) + 1):
        made = await api.send("MKCOL", api.files_url(user_id, "/".join(segments[:depth])))
        if made.status_code not in (201, 405):  # 405: it exists already
            _refused_write(api, made.status_code, "/".join(segments[:depth]))
    path = "/".join([*segments, f"{PROBE_PREFIX}{secrets.token_hex(6)}.txt"])
    url = api.files_url(user_id, path)
    written = await api.send(
        "PUT",
        url,
        content=content,
        headers={
            "Content-Length": str(len(content)),
            "If-None-Match": "*",
            "X-OC-Mtime": str(int(time.time())),
            "OC-Checksum": f"SHA256:{sha256}",
            "X-Hash": "sha256",
        },
    )
    if written.status_code not in (201, 204):
        _refused_write(api, written.status_code, path)
    try:
        server_hash = written.headers.get("X-Hash-SHA256")
        if server_hash is not None and server_hash.lower() != sha256:
            raise VerificationFailed(
                f"NextCloud stored the probe file /{path} with a different SHA-256 than was "
                "sent: the server or something in between alters uploads."
            )
        await _require_size(api, url, path, len(content))
        if server_hash is None:
            copy = await api.send("GET", url)
            api.refuse(copy, f"reading back /{path}")
            if hashlib.sha256(copy.content).hexdigest() != sha256:
                raise VerificationFailed(
                    f"The probe file /{path} read back differs from what was sent: the "
                    "server or something in between alters uploads."
                )
    finally:
        removed = await api.send("DELETE", url)
        if removed.status_code not in (200, 204, 404):
            log.warning("nextcloud.probe_not_removed path=%s status=%d", path, removed.status_code)
    return ProbeOutcome(
        path=f"/{path}",
        method=SERVER_HASH if server_hash else READ_BACK,
        mtime_accepted=written.headers.get("X-OC-MTime", "").lower() == "accepted",
        fallback=True,
    )


async def _require_size(api: NextcloudApi, url: str, path: str, size: int) -> None:
    found = await api.send(
        "PROPFIND",
        url,
        headers={"Depth": "0", "Content-Type": "application/xml"},
        content=b'<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop>'
        b"<d:getcontentlength/></d:prop></d:propfind>",
    )
    if found.status_code != 207:
        _refused_write(api, found.status_code, path)
    try:
        node = ElementTree.fromstring(found.content).find(".//{DAV:}getcontentlength")
        stored = int(node.text or "") if node is not None else None
    except (ElementTree.ParseError, ValueError):
        stored = None
    if stored != size:
        raise VerificationFailed(
            f"NextCloud reports the probe file /{path} as {stored} bytes instead of {size}: "
            "uploads arrive incomplete (a proxy in front of NextCloud may cut them)."
        )


def _refused_write(api: NextcloudApi, status: int, path: str) -> None:
    if status == 507:
        raise TargetFull(f"NextCloud at {api.server} is full: free space or raise the quota.")
    if status in (403, 404, 409):
        raise ConfigurationError(
            f"NextCloud at {api.server} refused to write /{path} ({status}): the user may "
            "not write there. Choose a folder this user can write to "
            "(PHOTO_RELAY_TARGET_FOLDER)."
        )
    api.raise_for(status, f"writing /{path}")
    raise ConfigurationError(
        f"NextCloud at {api.server} answered {status} while writing /{path}, which is not a "
        "WebDAV success reply; photo-relay cannot trust uploads to this server."
    )
