"""The devices check: each active device has been in touch lately; at least one exists."""

from __future__ import annotations

from datetime import datetime, timedelta

from app.clock import spoken
from app.observe.doctor.findings import ago, ok, warn
from app.receipts import DeviceInfo, HealthCheck

__all__ = ["check_devices"]


def check_devices(devices: list[DeviceInfo], now: datetime, stale_days: float) -> list[HealthCheck]:
    """Each active device has been in touch recently; at least one device exists."""
    active = [d for d in devices if not d.revoked]
    if not active:
        return [
            warn(
                "devices",
                "No device may upload yet.",
                "Add one: `photo-relay device add my-iphone`, and put the token it prints in "
                "the Shortcut.",
            )
        ]
    results = []
    for device in active:
        name = f"device {device.name}"
        if device.last_seen_at is None:
            added = datetime.fromisoformat(device.created_at)
            results.append(
                warn(
                    name,
                    f"{device.name!r} was added {ago(added, now)} and has never been in touch.",
                    "Import the Shortcut on that phone, paste the device's token into it and "
                    "run it once while on the same network as photo-relay.",
                )
            )
            continue
        seen = datetime.fromisoformat(device.last_seen_at)
        if now - seen > timedelta(days=stale_days):
            results.append(
                warn(
                    name,
                    f"{device.name!r} was last in touch {ago(seen, now)} "
                    f"({spoken(seen, reference=now)}): its new photos may not be arriving.",
                    "On the phone: check the Shortcut automation is on and runs without "
                    "asking, that the phone joins the network photo-relay is on, and run the "
                    "Shortcut once by hand to see any error.",
                )
            )
            continue
        results.append(ok(name, f"{device.name!r} was last in touch {ago(seen, now)}."))
    return results
