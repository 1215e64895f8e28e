"""A description of the machine a benchmark ran on: CPU, cores, RAM, disk, Python."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

__all__ = ["ONE_CORE", "describe", "pinned"]

# What `--one-core` pins a bench to: what `taskset -c 0` does, a Pi-class box.
ONE_CORE = frozenset({0})


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _ram() -> str:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return f"{int(line.split()[1]) / 1024**2:.1f} GiB RAM"
    return "unknown RAM"


def _disk(path: Path) -> str:
    try:
        out = (
            subprocess.run(
                ["df", "--output=source,fstype,size", str(path)], capture_output=True, text=True
            )
            .stdout.splitlines()[-1]
            .split()
        )
    except (OSError, IndexError):
        return "unknown disk"
    source, fstype, size_kib = out[0], out[1], int(out[2])
    device = Path(source).name
    rotational = Path(f"/sys/block/{device}/queue/rotational")
    medium = ""
    if rotational.exists():
        flag = rotational.read_text().strip()
        medium = ", rotational" if flag == "1" else ", non-rotational"
        medium += " (as the kernel reports it)"
    virtual = " (virtio)" if device.startswith("vd") else ""
    return f"{source}{virtual} {fstype}, {size_kib / 1024**2:.0f} GiB{medium}"


def describe(workdir: Path) -> str:
    """One line a reader can compare with their own machine."""
    cores = os.cpu_count() or 0
    return (
        f"{_cpu_model()}, {cores} cores, {_ram()}; disk {_disk(workdir)}; "
        f"Python {platform.python_version()} ({sys.implementation.name}); "
        f"Linux {platform.release()}"
    )


@contextlib.contextmanager
def pinned(cores: frozenset[int] | None) -> Iterator[None]:
    """Run the block on `cores` only; servers and threads started in it inherit that."""
    if cores is None:
        yield
        return
    everything = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cores)
    try:
        yield
    finally:
        os.sched_setaffinity(0, everything)
