"""Writing figures into docs/PERFORMANCE.md, and the small statistics they need.

Each bench script owns one generated section between `<!-- bench:NAME -->` and
`<!-- /bench:NAME -->`; the prose around the sections is written by hand and kept.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path

__all__ = ["DOC", "median", "samples", "write_section"]

DOC = Path(__file__).resolve().parent.parent / "docs" / "PERFORMANCE.md"


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def samples(values: Sequence[float], fmt: str = "{:.0f}") -> str:
    """Every run's value, so the spread is visible next to the median."""
    return ", ".join(fmt.format(v) for v in values)


def write_section(name: str, body: str, doc: Path = DOC) -> None:
    """Replace the generated section `name` (or append it if the file has none yet)."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{start}\n{body.strip()}\n{end}"
    text = doc.read_text() if doc.exists() else "# Performance\n"
    if start in text and end in text:
        before, _, rest = text.partition(start)
        _, _, after = rest.partition(end)
        text = before + block + after
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    doc.write_text(text)
    print(f"wrote the {name!r} section of {doc}")
