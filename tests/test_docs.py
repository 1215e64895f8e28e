"""The README documents every setting, with its environment variable name, and every package."""

from __future__ import annotations

import re
from pathlib import Path

from app.config import Settings

README = Path(__file__).resolve().parent.parent / "README.md"


def documented_variables() -> set[str]:
    return set(re.findall(r"^\| `(PHOTO_RELAY_[A-Z0-9_]+)` \|", README.read_text(), re.M))


def test_every_setting_is_in_the_readme_table() -> None:
    """Adding a setting without a row in the README's configuration table fails."""
    expected = {f"PHOTO_RELAY_{name.upper()}" for name in Settings.model_fields}
    missing = expected - documented_variables()
    assert not missing, f"settings missing from the README table: {sorted(missing)}"


def test_readme_lists_no_setting_that_does_not_exist() -> None:
    """A README row for a removed setting fails too."""
    expected = {f"PHOTO_RELAY_{name.upper()}" for name in Settings.model_fields}
    extra = documented_variables() - expected
    assert not extra, f"README documents settings that do not exist: {sorted(extra)}"


def test_code_map_names_every_package() -> None:
    """Each package under app/ has a row in the README's code map, and no row names a ghost."""
    app = README.parent / "app"
    packages = {
        f"app/{init.parent.relative_to(app).as_posix()}/" for init in app.rglob("__init__.py")
    } - {"app/./"}
    code_map = README.read_text().partition("### Code map")[2].partition("\n- ")[0]
    named = set(re.findall(r"`(app/[a-z_/]+/)`", code_map))
    assert packages - named == set(), "packages missing from the README's code map"
    assert named - packages == set(), "the code map names packages that do not exist"
