"""The reliability suite's rig: a killable service, its uploads, and the "nothing lost" check.

`Rig` runs `photo-relay serve` as a subprocess (tests/support/servers.py's ServiceProcess) over one
data folder, so a test can SIGKILL it and start it again on the same data. `check_nothing_lost`
is the one verdict every scenario ends with; `Tally` collects the figures RELIABILITY.md quotes
(printed with `-s`, one line per test).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from app.crashpoints import CRASH_AT_VARIABLE
from tests.conftest import add_device
from tests.support.servers import ServiceProcess, find_free_port, wait_for
from tests.support.webdav_server import DavServer

__all__ = ["Rig", "Tally", "blob", "check_nothing_lost", "dav_env", "destination_files"]

TEMP_PREFIX = ".photo-relay-"


def blob(seed: int, size: int) -> bytes:
    """`size` bytes that differ per seed (cheap: a repeated 32-byte digest plus the seed)."""
    head = hashlib.sha256(f"seed-{seed}".encode()).digest()
    return (head * (size // 32 + 1))[: size - 8] + seed.to_bytes(8, "big")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def dav_env(server: DavServer, **extra: str) -> dict[str, str]:
    """Environment pointing a service subprocess at the test NextCloud/WebDAV server."""
    return {
        "PHOTO_RELAY_TARGET": "nextcloud" if server.nextcloud else "webdav",
        "PHOTO_RELAY_TARGET_URL": server.base_url if server.nextcloud else server.files_url,
        "PHOTO_RELAY_TARGET_USER": server.user,
        "PHOTO_RELAY_TARGET_PASSWORD": server.password,
        "PHOTO_RELAY_TARGET_FOLDER": "/Photos",
        "PHOTO_RELAY_TARGET_TIMEOUT_SECONDS": "10",
        **extra,
    }


@dataclass
class Tally:
    """Figures one test reports: kills, faults, uploads, items checked."""

    name: str
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, key: str, amount: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + amount

    def report(self) -> None:
        print(f"\nRELIABILITY {self.name} {json.dumps(self.counts, sort_keys=True)}")


class Rig:
    """One data folder, one device, and a service subprocess that can be killed and restarted."""

    def __init__(self, tmp_path: Path, env: dict[str, str] | None = None) -> None:
        self.data_dir = tmp_path / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = find_free_port()
        self.base_env = {
            "PHOTO_RELAY_MIN_FREE_BYTES": "0",
            "PHOTO_RELAY_RELAY_RETRY_BASE_SECONDS": "0.05",
            "PHOTO_RELAY_RELAY_RETRY_MAX_SECONDS": "0.5",
            "PHOTO_RELAY_RELAY_MAX_ATTEMPTS": "1000",
            **(env or {}),
        }
        self.token = add_device(self.data_dir, "phone")
        self.process: ServiceProcess | None = None
        self.kills = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, crash_at: str | None = None, **env: str) -> ServiceProcess:
        extra = {**self.base_env, **env}
        if crash_at:
            extra[CRASH_AT_VARIABLE] = crash_at
        self.process = ServiceProcess(self.data_dir, self.port, extra)
        self.process.start()
        return self.process

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.kills += 1

    def wait_died_by_sigkill(self) -> None:
        """The service killed itself at its crash point (SIGKILL, not a clean exit)."""
        assert self.process is not None and self.process.process is not None
        code = self.process.process.wait(timeout=30)
        assert code == -9, f"expected death by SIGKILL, got exit code {code}"
        self.kills += 1

    def client(self, token: str | None = None, timeout: float = 30) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def put(self, data: bytes, name: str, client: httpx.Client | None = None) -> httpx.Response:
        own = client or self.client()
        try:
            return own.put(
                f"/v1/blobs/{sha256_hex(data)}",
                content=data,
                headers={"Content-Disposition": f'attachment; filename="{name}"'},
            )
        finally:
            if client is None:
                own.close()

    def receipt(self, sha: str) -> dict[str, Any] | None:
        with self.client() as client:
            response = client.get(f"/v1/items/{sha}")
        return response.json() if response.status_code == 200 else None

    def wait_verified(self, shas: list[str], timeout: float = 60) -> None:
        def all_verified() -> bool:
            states = self.states()
            return all(states.get(sha) == "verified" for sha in shas)

        wait_for(all_verified, timeout=timeout, what=f"{len(shas)} item(s) to be verified")

    def states(self) -> dict[str, str]:
        return {row["sha256"]: row["state"] for row in self.rows()}

    def rows(self) -> list[sqlite3.Row]:
        conn = sqlite3.connect(f"file:{self.data_dir / 'photo-relay.db'}?mode=ro", uri=True)
        conn.row_factory = sqlite3.Row
        try:
            return conn.execute("SELECT * FROM items").fetchall()
        finally:
            conn.close()

    def journal_events(self, sha: str) -> list[str]:
        conn = sqlite3.connect(f"file:{self.data_dir / 'photo-relay.db'}?mode=ro", uri=True)
        try:
            rows = conn.execute(
                "SELECT event FROM journal WHERE sha256 = ? ORDER BY id", (sha,)
            ).fetchall()
        finally:
            conn.close()
        return [row[0] for row in rows]


def destination_files(root: Path) -> dict[str, bytes]:
    """Every file under `root` (relative path -> bytes), temp names included."""
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def check_nothing_lost(
    rig: Rig,
    acknowledged: dict[str, bytes],
    destination: Callable[[], dict[str, bytes]],
    *,
    before: dict[str, dict[str, Any]] | None = None,
) -> int:
    """The verdict: each acknowledged item verified exactly once, nothing partial anywhere.

    - every acknowledged hash is `verified`, and its bytes are at its remote path;
    - no content lands twice at the destination, and no temp name is left under a final name;
    - every file under a final name is complete content of an item we recorded;
    - the spool has no temp files and every object's name is its hash;
    - receipts given out `before` still say the same (hash, planned path, received time).
    Returns how many items were checked.
    """
    rows = {row["sha256"]: row for row in rig.rows()}
    files = destination()
    by_content: dict[str, list[str]] = {}
    for path, data in files.items():
        name = path.rpartition("/")[2]
        assert not name.startswith(TEMP_PREFIX), f"a temp file is left at the destination: {path}"
        by_content.setdefault(sha256_hex(data), []).append(path)
    for sha, paths in by_content.items():
        assert sha in rows, f"{paths} hold content photo-relay never recorded (partial file?)"
        assert len(paths) == 1, f"the same content landed {len(paths)} times: {paths}"
    for sha, data in acknowledged.items():
        row = rows.get(sha)
        assert row is not None, f"acknowledged item {sha} is unknown after restart: LOST"
        assert row["state"] == "verified", f"{sha} is {row['state']}, not verified"
        assert by_content.get(sha) == [files_key(row["remote_path"], files)], sha
        assert files[files_key(row["remote_path"], files)] == data
    spool = rig.data_dir / "spool"
    assert not list((spool / "tmp").iterdir()), "temp files left in the spool"
    for obj in (spool / "objects").rglob("*"):
        if obj.is_file():
            assert sha256_hex(obj.read_bytes()) == obj.name, f"corrupt spool object {obj}"
    for sha, receipt in (before or {}).items():
        row = rows[sha]
        assert (row["planned_path"], row["received_at"]) == (
            receipt["planned_path"],
            receipt["received_at"],
        ), f"the receipt of {sha} changed"
    return len(acknowledged)


def files_key(remote_path: str, files: dict[str, bytes]) -> str:
    """The key of `files` that is `remote_path` (remote files may sit below a base folder)."""
    matches = [key for key in files if key == remote_path or key.endswith("/" + remote_path)]
    assert len(matches) == 1, f"{remote_path} not found once at the destination: {matches}"
    return matches[0]
