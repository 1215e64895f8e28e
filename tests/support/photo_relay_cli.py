"""The real `photo-relay` command in a subprocess, for tests of what a person sees."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

__all__ = ["cli_env", "run_cli", "start_cli"]


def cli_env(data_dir: Path) -> dict[str, str]:
    """The environment with a data folder of its own and every log line switched on.

    The folder is made here, as the first `photo-relay serve` makes it: commands other
    than `serve` refuse a data folder that is not there (tests/cli/test_data_folder.py).
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTO_RELAY_")}
    return {**env, "PHOTO_RELAY_DATA_DIR": str(data_dir), "PHOTO_RELAY_LOG_LEVEL": "debug"}


def start_cli(data_dir: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", *args],
        env=cli_env(data_dir),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_cli(
    data_dir: Path, *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env={**cli_env(data_dir), **(env or {})},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )
