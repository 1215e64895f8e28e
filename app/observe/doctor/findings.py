"""How the doctor words a finding: ok / warn / fail, and the small phrases its messages share."""

from __future__ import annotations

import os
from datetime import datetime

from app.receipts import HealthCheck

__all__ = ["ago", "fail", "human_bytes", "ok", "service_user", "warn"]


def ok(name: str, message: str) -> HealthCheck:
    return HealthCheck(name=name, status="ok", message=message, fix=None)


def warn(name: str, message: str, fix: str) -> HealthCheck:
    return HealthCheck(name=name, status="warn", message=message, fix=fix)


def fail(name: str, message: str, fix: str) -> HealthCheck:
    return HealthCheck(name=name, status="fail", message=message, fix=fix)


def service_user() -> str:
    """Who runs this process, as a chown needs it."""
    return f"uid {os.getuid()}, gid {os.getgid()}"


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def ago(moment: datetime, now: datetime) -> str:
    seconds = (now - moment).total_seconds()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} minutes ago"
    if seconds < 2 * 86400:
        return f"{int(seconds // 3600)} hours ago"
    return f"{int(seconds // 86400)} days ago"
