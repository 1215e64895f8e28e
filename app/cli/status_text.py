"""`photo-relay status` in words: the status page's overview as lines for a terminal."""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

from app.observe.wording import (
    COUNT_ORDER,
    STATE_SHORT,
    ago,
    human_bytes,
    local_time,
    wall_time,
)
from app.receipts import ItemState
from app.store.overview import Snapshot

__all__ = ["status_lines"]


def status_lines(
    snap: Snapshot,
    zone: tzinfo | None,
    target: str,
    *,
    destination: str = "The destination",
    summary: dict[str, Any] | None = None,
) -> list[str]:
    """`target` describes where photos land; `destination` names it for the headline."""
    counts = snap.counts
    headline = snap.verdict(destination=destination, zone=zone).headline
    lines = [headline, f"Destination: {target}.", ""]
    lines.append(
        f"Files: {snap.total} total · "
        + " · ".join(f"{counts[state]} {STATE_SHORT[state]}" for state in COUNT_ORDER)
    )
    lines += ["", "Devices:"]
    if not snap.devices:
        lines.append("  none yet; add one with: photo-relay device add my-iphone")
    for device in snap.devices:
        when = ago(device.last_backup_at)
        if device.last_backup_at:
            when += f" ({local_time(device.last_backup_at, zone)})"
        note = " (revoked)" if device.revoked else ""
        lines.append(f"  {device.name}{note}: last backup {when}, {device.items} file(s)")
        if device.quiet:
            lines.append(f"    ! nothing from this device for more than {snap.quiet_days} days")
    if len(snap.people) > 1:
        lines += _people_lines(snap, zone)
    if snap.queue:
        lines += ["", f"On the way to the destination ({snap.pending}):"]
        for item in snap.queue:
            state = STATE_SHORT[item.state]
            lines.append(f"  {item.original_name}  {state}  {human_bytes(item.size)}")
            if item.state == ItemState.RETRY and item.last_error:
                lines.append(f"    {item.last_error}")
    if snap.failed:
        failed = counts[ItemState.FAILED]
        lines += ["", f"Could not be copied ({failed}); safe here, retry when fixed:"]
        for item in snap.failed:
            lines.append(f"  {item.original_name}  {item.sha256}")
            lines.append(f"    {item.last_error or 'No reason was recorded.'}")
        lines.append("  Retry: photo-relay retry [SHA256]")
    if snap.damaged:
        damaged = counts[ItemState.DAMAGED]
        lines += ["", f"Send these again ({damaged}); the copy kept here is damaged:"]
        for item in snap.damaged:
            lines.append(f"  {item.original_name}  taken {wall_time(item.captured_at)}")
            lines.append(f"    {item.last_error or 'The copy kept here is damaged.'}")
    if snap.recent:
        lines += ["", "Newest files:"]
        for item in snap.recent[:5]:
            received = local_time(item.received_at, zone)
            lines.append(f"  {received}  {item.original_name}  {STATE_SHORT[item.state]}")
    if summary is not None:
        lines += _home_lines(summary, zone)
    return lines


def _people_lines(snap: Snapshot, zone: tzinfo | None) -> list[str]:
    """One block per person: their copies per state and their phones' last backups (only
    shown when the household has more than one person; one person's are the lines above)."""
    lines = ["", "People:"]
    for person in snap.people:
        counts = " · ".join(
            f"{person.counts[state]} {STATE_SHORT[state]}"
            for state in COUNT_ORDER
            if person.counts[state]
        )
        where = f"{len(person.destinations)} destination(s)"
        lines.append(f"  {person.name}: {counts or 'no files yet'} ({where})")
        for device, last in person.last_backup.items():
            when = f"{ago(last)} ({local_time(last, zone)})" if last else ago(last)
            lines.append(f"    {device}: last backup {when}")
    return lines


def _home_lines(summary: dict[str, Any], zone: tzinfo | None) -> list[str]:
    copies = f"{summary['spool_files']} file(s), {human_bytes(summary['spool_bytes'])}"
    lines = ["", f"Kept on this machine: {copies}."]
    error = summary["last_error"]
    if error:
        lines.append(f"Last problem ({local_time(error.at, zone)}): {error.message}")
    return lines
