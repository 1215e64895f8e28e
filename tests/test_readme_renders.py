"""The guides render as written: parsed as CommonMark (markdown-it-py), as GitHub shows them.

A stray line before a code fence pairs every later fence wrongly: headings and steps turn
into a grey code block, and links to them go nowhere. These tests read the rendered
structure, not the source's look.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

ROOT = Path(__file__).resolve().parent.parent
GUIDES = sorted(
    [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), ROOT / "shortcuts" / "README.md"]
)
# GitHub renders CommonMark plus tables; links inside table cells count too.
PARSER = MarkdownIt("commonmark").enable("table")


def tokens_of(path: Path) -> list[Token]:
    return PARSER.parse(path.read_text(encoding="utf-8"))


def heading_lines(path: Path) -> dict[int, str]:
    """Source lines written as ATX headings: `#`..`######`, a space, blank lines around."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return {
        number: line
        for number, line in enumerate(lines)
        if re.match(r"#{1,6} \S", line)
        and (number == 0 or not lines[number - 1].strip())
        and (number + 1 == len(lines) or not lines[number + 1].strip())
    }


def plain_text(inline: Token) -> str:
    """A heading's text as GitHub slugs it: code spans keep their content, markup goes."""
    parts = [
        child.content for child in inline.children or [] if child.type in ("text", "code_inline")
    ]
    return "".join(parts)


def github_slug(text: str) -> str:
    """github-slugger: lower case, drop punctuation and symbols, each space becomes '-'."""
    kept = (
        char
        for char in text.lower()
        if char in " -_" or unicodedata.category(char)[0] in ("L", "N", "M")
    )
    return "".join(kept).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The `#fragment` each heading gets, with GitHub's -1, -2 for repeated headings."""
    tokens = tokens_of(path)
    seen: dict[str, int] = {}
    result = set()
    for index, token in enumerate(tokens):
        if token.type != "heading_open":
            continue
        slug = github_slug(plain_text(tokens[index + 1]))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        result.add(slug if count == 0 else f"{slug}-{count}")
    return result


def links(path: Path) -> list[str]:
    found = []
    for token in tokens_of(path):
        for child in token.children or []:
            if child.type == "link_open":
                found.append(str(child.attrs["href"]))
    return found


def guide_id(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


@pytest.mark.parametrize("guide", GUIDES, ids=guide_id)
def test_every_heading_line_renders_as_a_heading(guide: Path) -> None:
    """No heading is swallowed into a code block or a paragraph."""
    rendered = {
        token.map[0] for token in tokens_of(guide) if token.type == "heading_open" and token.map
    }
    written = heading_lines(guide)
    lost = [line for number, line in sorted(written.items()) if number not in rendered]
    assert written and not lost, f"{guide_id(guide)}: not rendered as headings: {lost}"


@pytest.mark.parametrize("guide", GUIDES, ids=guide_id)
def test_code_fences_pair_up_as_written(guide: Path) -> None:
    """No code block contains an opening fence: each one closes where it was meant to."""
    for token in tokens_of(guide):
        if token.type != "fence":
            continue
        opener = next(
            (line for line in token.content.splitlines() if re.match(r" {0,3}(```|~~~)\w", line)),
            None,
        )
        assert opener is None, (
            f"{guide_id(guide)} line {token.map[0] + 1 if token.map else '?'}: a code block "
            f"runs over the fence {opener!r}; a fence before it is unpaired"
        )


@pytest.mark.parametrize("guide", GUIDES, ids=guide_id)
def test_every_link_inside_the_repository_goes_somewhere(guide: Path) -> None:
    """`#anchor` names a heading of its file, `path#anchor` a file and a heading in it."""
    broken = []
    for href in links(guide):
        if re.match(r"[a-z][a-z0-9+.-]*:", href):  # https:, mailto:, ...: not ours to check
            continue
        target, _, fragment = href.partition("#")
        path = (guide.parent / target).resolve() if target else guide
        if not path.exists():
            broken.append(f"{href} (no such file)")
        elif fragment and fragment not in anchors(path):
            broken.append(f"{href} (no such heading)")
    assert not broken, f"{guide_id(guide)}: links that go nowhere: {broken}"


def test_the_slug_rules_match_githubs() -> None:
    """Punctuation drops out, spaces turn into hyphens one by one, code keeps its text."""
    assert github_slug("Raspberry Pi or any Linux machine, without Docker") == (
        "raspberry-pi-or-any-linux-machine-without-docker"
    )
    assert github_slug("What limits memory, the check and start-up") == (
        "what-limits-memory-the-check-and-start-up"
    )
    assert github_slug("photo-relay doctor") == "photo-relay-doctor"
    assert github_slug("A & B") == "a--b"
    (heading,) = [t for t in PARSER.parse("## `PUT /v1/blobs` (raw)\n") if t.type == "inline"]
    assert github_slug(plain_text(heading)) == "put-v1blobs-raw"
