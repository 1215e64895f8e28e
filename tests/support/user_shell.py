"""A person's shell for tests: the installed `photo-relay` script, a home of its own, any folder.

Each `UserShell` has its own HOME, XDG config and data folders under a tmp dir and no
PHOTO_RELAY_* variables unless a test gives them, so the commands find (or fail to find)
the data folder exactly as they would for someone typing them, from whatever working
folder the test picks — never the real home of the machine running the tests.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.servers import wait_until_responds

__all__ = ["SCRIPT", "Serving", "UserShell"]

SCRIPT = Path(sys.executable).with_name("photo-relay")


@dataclass
class Serving:
    """A `photo-relay serve` started by a UserShell, and the file its output goes to."""

    process: subprocess.Popen[bytes]
    output: Path

    def banner(self) -> str:
        return self.output.read_text(errors="replace")


@dataclass
class UserShell:
    home: Path
    variables: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for folder in ("home", "config", "data", "work"):
            (self.home / folder).mkdir(parents=True, exist_ok=True)

    @property
    def env(self) -> dict[str, str]:
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("PHOTO_RELAY_", "XDG_"))}
        return {
            **clean,
            "HOME": str(self.home / "home"),
            "XDG_CONFIG_HOME": str(self.home / "config"),
            "XDG_DATA_HOME": str(self.home / "data"),
            **self.variables,
        }

    @property
    def default_data_dir(self) -> Path:
        return self.home / "data" / "photo-relay"

    def folder(self, name: str) -> Path:
        """A working folder of this user (made if needed)."""
        path = self.home / "work" / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def run(
        self,
        *args: str,
        cwd: Path | None = None,
        stdin: str = "",
        variables: dict[str, str] | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        """`photo-relay ARGS` from `cwd` (default: a folder of its own), to the end."""
        return subprocess.run(
            [str(SCRIPT), *args],
            cwd=cwd or self.folder("elsewhere"),
            env={**self.env, **(variables or {})},
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def run_line(self, line: str, *, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        """A command line as printed for the person to copy (no shell features)."""
        return subprocess.run(
            shlex.split(line),
            cwd=cwd or self.folder("elsewhere"),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def start(
        self, *args: str, cwd: Path | None = None, variables: dict[str, str] | None = None
    ) -> subprocess.Popen[str]:
        """`photo-relay ARGS` in the background, stdout and stderr piped."""
        return subprocess.Popen(
            [str(SCRIPT), *args],
            cwd=cwd or self.folder("elsewhere"),
            env={**self.env, **(variables or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    @contextmanager
    def serving(
        self,
        *args: str,
        port: int,
        cwd: Path | None = None,
        variables: dict[str, str] | None = None,
    ) -> Iterator[Serving]:
        """`photo-relay serve --port PORT ARGS` until it answers on 127.0.0.1; stopped after."""
        workdir = cwd or self.folder("service")
        output = self.home / f"serve-{port}.out"
        with output.open("wb") as sink:
            process = subprocess.Popen(
                [str(SCRIPT), "serve", "--port", str(port), *args],
                cwd=workdir,
                env={**self.env, **(variables or {})},
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_until_responds(f"http://127.0.0.1:{port}/healthz")
            yield Serving(process, output)
        finally:
            process.terminate()
            process.wait(timeout=30)
