"""The README's `.venv/bin/photo-relay …` examples work when pasted in the checkout folder.

Each example's command (the words before its first argument) is run with `--help` from the
checkout, as a person would paste it: the path must exist and the command must be one the
program has. A renamed command or a README that points at a missing path fails here.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMMAND = ".venv/bin/photo-relay"


def readme_examples() -> list[str]:
    """Every `.venv/bin/photo-relay …` inside a shell block of the README, as written."""
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    return [
        match.group(0).split("#")[0].strip().rstrip(")")
        for block in blocks
        for match in re.finditer(rf"{re.escape(COMMAND)}[^\n]*", block)
    ]


def command_words(example: str) -> list[str]:
    """`device rotate NAME` → [device, rotate]: the words before the first argument."""
    words = []
    for word in example.split()[1:]:
        if not re.fullmatch(r"[a-z][a-z-]*", word):
            break
        words.append(word)
    return words


def test_the_readme_has_examples_to_check() -> None:
    """The check below is not vacuous: the first steps and device commands are there."""
    words = {" ".join(command_words(e)) for e in readme_examples()}
    assert {"nextcloud login", "device add", "device rotate", "config"} <= words


@pytest.mark.parametrize("example", sorted(set(readme_examples())))
def test_a_readme_example_runs_from_the_checkout_folder(example: str) -> None:
    """The command of the example exists as printed, from the checkout folder."""
    if not (ROOT / COMMAND).exists():
        pytest.skip("no .venv in the checkout (python3 run.py serve makes it)")
    words = command_words(example)
    result = subprocess.run(
        [COMMAND, *words, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, f"{example!r}: {result.stderr}"
    assert "Usage:" in result.stdout
