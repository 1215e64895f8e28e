"""Settings that cannot work stop the start with a message naming them, not later uploads."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from app.config import Settings
from tests.cli.test_cli import photo_relay


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
