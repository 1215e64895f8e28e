#!/usr/bin/env python3
"""The two commands: `python3 run.py serve` starts photo-relay, `python3 run.py test` tests it.

Both create a virtual environment in .venv on first use (and refresh it when
pyproject.toml changes), so a fresh machine needs nothing but Python 3.11+.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"


def ensure_environment(extras: str) -> None:
    """Create .venv and install the project (with `extras`) unless already up to date."""
    # Kept although the project requires 3.11: this file is what an older Python runs first.
    if sys.version_info < (3, 11):  # noqa: UP036
        sys.exit(f"photo-relay needs Python 3.11 or newer; this is {sys.version.split()[0]}.")
    stamp_text = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest() + extras
    stamp = VENV / f".installed-{extras or 'base'}"
    if stamp.exists() and stamp.read_text() == stamp_text:
        return
    if not PYTHON.exists():
        print("Creating the virtual environment in .venv ...", flush=True)
        venv.create(VENV, with_pip=True)
    print("Installing photo-relay and its dependencies ...", flush=True)
    target = f".[{extras}]" if extras else "."
    subprocess.run(
        [
            str(PYTHON),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-e",
            target,
        ],
        cwd=ROOT,
        check=True,
    )
    stamp.write_text(stamp_text)


def run(args: list[str]) -> int:
    return subprocess.run(args, cwd=ROOT).returncode


def main() -> int:
    command, rest = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("", [])
    if command == "serve":
        ensure_environment("")
        os.execv(str(BIN / "photo-relay"), [str(BIN / "photo-relay"), "serve", *rest])
    if command == "test":
        ensure_environment("test")
        for check in (
            [str(PYTHON), "-m", "ruff", "check", "app", "tests", "bench"],
            [str(PYTHON), "-m", "ruff", "format", "--check", "app", "tests", "bench"],
            [str(PYTHON), "-m", "mypy"],
        ):
            print(
                "$",
                " ".join(Path(check[0]).name if i == 0 else a for i, a in enumerate(check)),
                flush=True,
            )
            if run(check) != 0:
                return 1
        return run([str(PYTHON), "-m", "pytest", *rest])
    print(__doc__.strip())
    print("\nUsage: python3 run.py serve [--host H --port P --data-dir D] | test [pytest args]")
    return 2


if __name__ == "__main__":
    sys.exit(main())
