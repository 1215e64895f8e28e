"""Where a file goes: its destination path from the template, and its alternatives.

Pure functions. Names are NFC, free of control characters and path separators, at most
250 UTF-8 bytes with the extension kept, and never escape the destination folder. The same
inputs always give the same path, so the same photo always lands in the same place.
"""

from __future__ import annotations

import posixpath
import re
import string
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime

from app.errors import ConfigurationError

__all__ = [
    "MAX_NAME_BYTES",
    "NameRules",
    "alternative_paths",
    "conform_path",
    "name_key",
    "remote_path",
    "safe_name",
    "with_characters",
]

MAX_NAME_BYTES = 250  # NextCloud's file cache column; also fine for every local filesystem

_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]")
# Extensions that servers treat as their own temp files and refuse.
_RESERVED_EXTENSIONS = {"part", "filepart"}


@dataclass(frozen=True)
class NameRules:
    """A server's own rules for names (NextCloud >= 30 publishes them as capabilities).

    Names, basenames and extensions compare case-insensitively, as NextCloud does.
    """

    names: tuple[str, ...] = ()  # whole names, e.g. ".htaccess"
    basenames: tuple[str, ...] = ()  # the part before the first dot, e.g. "con"
    characters: tuple[str, ...] = ()  # e.g. ":" or "?"
    extensions: tuple[str, ...] = ()  # endings, e.g. ".part"


def conform_name(name: str, rules: NameRules) -> str:
    """`name` changed as little as possible to pass `rules`; the same input, the same output.

    Forbidden characters become `_`; a forbidden basename gets `_` appended to it (CON.jpg
    -> CON_.jpg); a forbidden ending or whole name gets `_` at the end.
    """
    for character in rules.characters:
        if character and character != "_":
            name = name.replace(character, "_")
    dot = name.find(".", 1)
    base = name if dot < 0 else name[:dot]
    if base.lower() in {b.lower() for b in rules.basenames}:
        name = f"{base}_{name[len(base) :]}"
    lowered = name.lower()
    if any(e and lowered.endswith(e.lower()) for e in rules.extensions):
        name += "_"
    if name.lower() in {n.lower() for n in rules.names}:
        name += "_"
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        stem, ext = _split_extension(name)
        suffix = f".{ext}" if ext else ""
        name = _truncate_utf8(stem, MAX_NAME_BYTES - len(suffix.encode("utf-8"))) + suffix
    return name


def with_characters(rules: NameRules | None, characters: Iterable[str]) -> NameRules | None:
    """`rules` with more forbidden characters (ones a server refused in its replies)."""
    extra = tuple(sorted(set(characters) - set(rules.characters if rules else ())))
    if not extra:
        return rules
    rules = rules or NameRules()
    return replace(rules, characters=(*rules.characters, *extra))


def conform_path(path: str, rules: NameRules | None) -> str:
    """Every segment of `path` conformed to `rules` (None: the server has none)."""
    if rules is None or rules == NameRules():
        return path
    return "/".join(conform_name(segment, rules) for segment in path.split("/"))


def name_key(name: str) -> str:
    """How names are compared for clashes: NFC and case-folded."""
    return unicodedata.normalize("NFC", name).casefold()


def _split_extension(name: str) -> tuple[str, str]:
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or not ext or len(ext) > 10 or " " in ext:
        return name, ""
    return stem, ext


def _truncate_utf8(text: str, max_bytes: int) -> str:
    encoded = text.encode("utf-8")[:max_bytes]
    return encoded.decode("utf-8", errors="ignore")


def safe_name(original: str, *, fallback_stem: str, extension: str | None = None) -> str:
    """A file name that is safe on every target, derived from what the client called it."""
    name = unicodedata.normalize("NFC", original)
    name = _UNSAFE.sub("_", name).strip().lstrip(".").strip()
    stem, ext = _split_extension(name)
    if not stem:
        stem = fallback_stem
    if not ext and extension:
        ext = extension
    if ext.lower() in _RESERVED_EXTENSIONS:
        ext += "_"
    suffix = f".{ext}" if ext else ""
    stem = _truncate_utf8(stem, MAX_NAME_BYTES - len(suffix.encode("utf-8"))).rstrip()
    return (stem or fallback_stem) + suffix


def _safe_segment(segment: str) -> str:
    segment = _UNSAFE.sub("_", unicodedata.normalize("NFC", segment)).strip()
    return "" if segment in {".", ".."} else _truncate_utf8(segment, MAX_NAME_BYTES)


def remote_path(
    template: str,
    *,
    captured_local: datetime,
    name: str,
    sha256: str,
    kind: str,
    device: str,
) -> str:
    """The destination path (relative, '/'-separated) for one item."""
    stem, ext = _split_extension(name)
    fields = {
        "year": f"{captured_local.year:04d}",
        "month": f"{captured_local.month:02d}",
        "day": f"{captured_local.day:02d}",
        "hour": f"{captured_local.hour:02d}",
        "minute": f"{captured_local.minute:02d}",
        "name": name,
        "stem": stem,
        "ext": ext,
        "kind": kind,
        "device": _UNSAFE.sub("_", device) or "unknown",
        "sha8": sha256[:8],
    }
    unknown = {f for _, f, _, _ in string.Formatter().parse(template) if f} - fields.keys()
    if unknown:
        raise ConfigurationError(
            f"The path template uses unknown fields {sorted(unknown)}; "
            f"known fields are {sorted(fields)}."
        )
    # Each field is filled in per segment so a value can never add or remove a level.
    segments = [_safe_segment(part.format(**fields)) for part in template.split("/")]
    path = "/".join(s for s in segments if s)
    normalised = posixpath.normpath(path)
    # A segment such as "..phone" is a fine name; only ".." itself climbs out.
    climbs = normalised == ".." or normalised.startswith(("/", "../"))
    if not path or climbs or normalised != path:
        raise ConfigurationError(f"The path template gives an unsafe path: {path!r}.")
    return path


def alternative_paths(path: str, sha256: str) -> Iterator[str]:
    """The path itself, then deterministic alternatives for when another file holds it."""
    folder, _, name = path.rpartition("/")
    stem, ext = _split_extension(name)
    suffix = f".{ext}" if ext else ""
    yield path
    for length in (8, 16, 64):
        tag = f" ({sha256[:length]})"
        room = MAX_NAME_BYTES - len((tag + suffix).encode("utf-8"))
        candidate = _truncate_utf8(stem, room) + tag + suffix
        yield f"{folder}/{candidate}" if folder else candidate
