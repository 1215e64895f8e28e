"""Settings that cannot work stop the start with a message naming them, not later uploads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from app.config import Settings, write_settings_file
from tests.cli.test_cli import SCRIPT, clean_env, photo_relay
from tests.conftest import running
from tests.support.servers import find_free_port


@pytest.mark.parametrize(
    ("template", "complaint"),
    [
        ("{year}/{colour}/{name}", "unknown fields ['colour']"),
        ("{year/{name}", "cannot be filled in"),
        ("{year.real}/{name}", "unknown fields"),
        ("{year:%Y}/{name}", "cannot be filled in"),
        ("{year}/{month}", "must contain {name}"),
    ],
)
def test_a_path_template_that_cannot_be_filled_in_is_refused(
    tmp_path: Path, template: str, complaint: str
) -> None:
    """Typos in PHOTO_RELAY_PATH_TEMPLATE are caught when the settings are read."""
    with pytest.raises(ValidationError, match=complaint.replace("[", r"\[").replace("{", r"\{")):
        Settings(data_dir=tmp_path, path_template=template)


def test_an_unknown_time_zone_is_refused(tmp_path: Path) -> None:
    """PHOTO_RELAY_TIMEZONE must be an IANA zone name."""
    with pytest.raises(ValidationError, match="unknown time zone 'Mars/Base'"):
        Settings(data_dir=tmp_path, timezone="Mars/Base")
    assert Settings(data_dir=tmp_path, timezone="Europe/Berlin").timezone == "Europe/Berlin"


def test_the_command_names_the_bad_setting_instead_of_a_traceback(tmp_path: Path) -> None:
    """`photo-relay serve` with a bad zone says which variable to fix and exits."""
    (tmp_path / ".env").write_text("PHOTO_RELAY_TIMEZONE=Europe/Atlantis\n")
    result = photo_relay("serve", "--port", "1", data_dir=tmp_path, cwd=tmp_path)
    assert result.returncode == 1
    assert "PHOTO_RELAY_TIMEZONE" in result.stderr and "Europe/Atlantis" in result.stderr
    assert "Traceback" not in result.stderr


def test_settings_cannot_be_changed_once_read(tmp_path: Path) -> None:
    """Settings are frozen: a part that tries to change them fails instead of changing others'."""
    settings = Settings(data_dir=tmp_path)
    with pytest.raises(ValidationError, match="frozen"):
        settings.relay_parallel = 4  # type: ignore[misc]
    assert settings.relay_parallel == 2


# -- the settings file in the data folder, and where each setting comes from (issue 15) ---


def test_config_shows_each_setting_with_its_source_and_hides_secrets(tmp_path: Path) -> None:
    """File below environment below command line; the password is never printed."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "settings.toml").write_text(
        'target_folder = "/Photos/From-File"\nrelay_parallel = 5\nport = 8123\n'
    )
    env = clean_env(
        PHOTO_RELAY_RELAY_PARALLEL="3",
        PHOTO_RELAY_TARGET_PASSWORD="very-secret-app-password",
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_DATA_HOME=str(tmp_path / "xdg-data"),
    )
    other = tmp_path / "elsewhere"
    other.mkdir()
    command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "app.cli"]
    result = subprocess.run(
        [*command, "config", "--data-dir", str(data_dir), "--json"],
        env=env,
        cwd=other,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    shown = {entry["variable"]: entry for entry in json.loads(result.stdout)}
    assert shown["PHOTO_RELAY_DATA_DIR"]["source"] == "command line"
    assert shown["PHOTO_RELAY_TARGET_FOLDER"] == {
        "variable": "PHOTO_RELAY_TARGET_FOLDER",
        "value": "/Photos/From-File",
        "source": "settings file",
    }
    assert shown["PHOTO_RELAY_PORT"]["value"] == "8123"
    assert shown["PHOTO_RELAY_RELAY_PARALLEL"]["value"] == "3"
    assert shown["PHOTO_RELAY_RELAY_PARALLEL"]["source"] == "environment"
    assert shown["PHOTO_RELAY_TARGET_PASSWORD"]["value"] == "(set, hidden)"
    assert shown["PHOTO_RELAY_TIMEZONE"]["source"] == "default"
    assert set(shown) == {f"PHOTO_RELAY_{name.upper()}" for name in Settings.model_fields}
    assert "very-secret-app-password" not in result.stdout + result.stderr


def test_status_shows_the_running_services_configuration_without_secrets(
    tmp_path: Path,
) -> None:
    """/v1/status (admin) lists the settings in effect, with sources, secrets hidden."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "settings.toml").write_text("spool_retention_days = 9.5\n")
    settings = Settings(
        data_dir=data_dir,
        port=find_free_port(),
        min_free_bytes=0,
        target_password="hunter2-app-password",
    )
    with running(settings) as service, service.admin() as client:
        reply = client.get("/v1/status")
        anonymous = httpx.get(service.base_url + "/v1/status")
    assert reply.status_code == 200
    assert anonymous.status_code == 401
    shown = {entry["variable"]: entry for entry in reply.json()["configuration"]}
    assert shown["PHOTO_RELAY_SPOOL_RETENTION_DAYS"] == {
        "variable": "PHOTO_RELAY_SPOOL_RETENTION_DAYS",
        "value": "9.5",
        "source": "settings file",
    }
    assert shown["PHOTO_RELAY_TARGET_PASSWORD"]["value"] == "(set, hidden)"
    assert shown["PHOTO_RELAY_ADMIN_TOKEN"]["value"] == "(not set)"
    assert "hunter2-app-password" not in reply.text
    assert service.admin_token not in reply.text


@pytest.mark.parametrize(
    ("content", "named"),
    [
        ("colour = 'blue'\n", "PHOTO_RELAY_COLOUR"),
        ("target = 'ftp'\n", "PHOTO_RELAY_TARGET"),
        ("target = \n", "settings.toml cannot be read"),
    ],
)
def test_a_bad_settings_file_stops_serve_with_the_setting_named(
    tmp_path: Path, content: str, named: str
) -> None:
    """A typo in settings.toml stops the start with a message naming it, not a traceback."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "settings.toml").write_text(content)
    result = photo_relay("serve", "--port", "1", data_dir=data_dir, cwd=tmp_path)
    assert result.returncode == 1
    assert named in result.stderr
    assert str(data_dir / "settings.toml") in result.stderr  # where to look for it
    assert "Traceback" not in result.stderr


def test_the_environment_wins_over_the_settings_file(tmp_path: Path) -> None:
    """A variable set where the service starts beats what a command wrote to the file."""
    write_settings_file(tmp_path, {"target": "webdav", "relay_parallel": 4})
    assert Settings(data_dir=tmp_path).target == "webdav"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PHOTO_RELAY_TARGET", "local")
        settings = Settings(data_dir=tmp_path)
    assert (settings.target, settings.origin_of("target")) == ("local", "environment")
    assert (settings.relay_parallel, settings.origin_of("relay_parallel")) == (4, "settings file")
    assert write_settings_file(tmp_path, {"relay_parallel": None}).read_text().count("=") == 1
    assert Settings(data_dir=tmp_path).relay_parallel == 2
