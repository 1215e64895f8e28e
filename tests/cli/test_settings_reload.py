"""A running `photo-relay serve` picks up its settings file by itself (issue 15).

A change that gives valid settings restarts the same process with them (same PID, same
port); a change that does not is reported and the service keeps its settings.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.servers import find_free_port, wait_for
from tests.support.user_shell import SCRIPT, UserShell


@pytest.fixture
def shell(tmp_path: Path) -> UserShell:
    if not SCRIPT.exists():
        pytest.skip("the photo-relay console script is not installed in this environment")
    return UserShell(tmp_path / "user")


def setting(port: int, admin: str, variable: str) -> dict[str, str] | None:
    try:
        reply = httpx.get(
            f"http://127.0.0.1:{port}/v1/status",
            headers={"Authorization": f"Bearer {admin}"},
            timeout=5,
        )
    except httpx.TransportError:
        return None  # restarting
    entries = {e["variable"]: e for e in reply.json()["configuration"]}
    return entries[variable] if reply.status_code == 200 else None


def test_a_valid_change_restarts_the_same_process_with_it(shell: UserShell) -> None:
    """Edit settings.toml while serving: within seconds the service reports the new value,
    from the settings file, in the same process."""
    port = find_free_port()
    with shell.serving(port=port) as serving:
        admin = shell.run("admin-token").stdout.strip()
        assert setting(port, admin, "PHOTO_RELAY_RELAY_PARALLEL") == {
            "variable": "PHOTO_RELAY_RELAY_PARALLEL",
            "value": "2",
            "source": "default",
        }
        (shell.default_data_dir / "settings.toml").write_text("relay_parallel = 3\n")
        wait_for(
            lambda: (setting(port, admin, "PHOTO_RELAY_RELAY_PARALLEL") or {}).get("value") == "3",
            what="the service to restart with the new setting",
        )
        assert serving.process.poll() is None
        banner = serving.banner()
    assert banner.count("photo-relay is starting.") == 2
    assert "settings.toml changed: photo-relay restarts to use it." in banner


def test_an_invalid_change_is_reported_and_the_service_keeps_running(shell: UserShell) -> None:
    """A typo written while serving does not stop the service: it says why and carries on."""
    port = find_free_port()
    with shell.serving(port=port) as serving:
        admin = shell.run("admin-token").stdout.strip()
        (shell.default_data_dir / "settings.toml").write_text("target = 'ftp'\n")
        wait_for(lambda: "keeps running" in serving.banner(), what="the service to notice")
        assert setting(port, admin, "PHOTO_RELAY_TARGET") == {
            "variable": "PHOTO_RELAY_TARGET",
            "value": "local",
            "source": "default",
        }
        banner = serving.banner()
    assert banner.count("photo-relay is starting.") == 1
