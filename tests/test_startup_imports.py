"""Start-up imports only what serving needs: the optional parts load on first use.

Pillow, httpx, Jinja2 and prometheus_client together were about a quarter of the start-up
time (docs/PERFORMANCE.md); each is needed only by a thumbnail, a network target, a page
or a scrape. A fresh interpreter shows what an import pulls in, so the check runs in one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

# Started, then asked which of the optional libraries the start loaded.
START_AND_LIST = """
import asyncio, json, sys
from app.cli.commands import load_settings
from app.main import create_app

async def start_and_stop(app):
    async with app.router.lifespan_context(app):
        pass

asyncio.run(start_and_stop(create_app(load_settings(data_dir=sys.argv[1]))))
optional = ("PIL", "pillow_heif", "hachoir", "httpx", "jinja2", "prometheus_client")
print(json.dumps([name for name in optional if name in sys.modules]))
"""


def test_starting_with_the_local_folder_loads_no_optional_library(tmp_path: Path) -> None:
    """Opening the app and its lifespan with the local target imports none of them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTO_RELAY_")}
    env["PHOTO_RELAY_TARGET_FOLDER"] = str(tmp_path / "library")
    done = subprocess.run(
        [sys.executable, "-c", START_AND_LIST, str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
