"""WebDAV PROPFIND: the request body the relay sends and the multistatus reply it reads.

Only the properties the relay uses are asked for; properties a server does not have come
back in a 404 propstat and are simply absent. ETags are kept without quotes, because some
servers quote them in one place and not in another. Paths keep the server's own spelling
(an NFD name stays NFD), so a file the server listed can be asked for by that name.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from app.errors import TargetUnavailable

__all__ = ["PROPFIND_BODY", "QUOTA_BODY", "TRASH_BODY", "DavEntry", "parse_multistatus"]

PROPFIND_BODY = (
    b'<?xml version="1.0" encoding="utf-8"?>'
    b'<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">'
    b"<d:prop><d:resourcetype/><d:getcontentlength/><d:getetag/><oc:fileid/>"
    b"<oc:checksums/></d:prop>"
    b"</d:propfind>"
)

# RFC 4331's quota properties, for the free-space figure of a full destination.
QUOTA_BODY = (
    b'<?xml version="1.0" encoding="utf-8"?><d:propfind xmlns:d="DAV:">'
    b"<d:prop><d:resourcetype/><d:quota-available-bytes/></d:prop></d:propfind>"
)
# NextCloud's trash bin listing: where each deleted item came from.
TRASH_BODY = (
    b'<?xml version="1.0" encoding="utf-8"?>'
    b'<d:propfind xmlns:d="DAV:" xmlns:nc="http://nextcloud.org/ns">'
    b"<d:prop><d:resourcetype/><nc:trashbin-original-location/></d:prop></d:propfind>"
)

_D = "{DAV:}"
_OC = "{http://owncloud.org/ns}"
_NC = "{http://nextcloud.org/ns}"


@dataclass(frozen=True)
class DavEntry:
    """One resource in a PROPFIND reply."""

    path: str  # decoded as the server spells it, no trailing slash
    is_collection: bool
    size: int | None
    etag: str | None
    file_id: str | None
    checksums: tuple[str, ...] = ()  # NextCloud's stored `ALGO:hex` values (oc:checksums)
    free_bytes: int | None = None  # quota-available-bytes, where asked and known
    original_location: str | None = None  # a trash bin item's path before deletion

    @property
    def name(self) -> str:
        return self.path.rstrip("/").rpartition("/")[2]


def _text(prop: ET.Element, tag: str) -> str | None:
    found = prop.find(tag)
    return found.text.strip() if found is not None and found.text else None


def _entry(response: ET.Element) -> DavEntry | None:
    href = response.findtext(f"{_D}href")
    if not href:
        return None
    path = unquote(urlsplit(href.strip()).path).rstrip("/")
    props: dict[str, str | None] = {}
    checksums: list[str] = []
    collection = False
    for propstat in response.findall(f"{_D}propstat"):
        if " 200 " not in f" {propstat.findtext(f'{_D}status') or ''} ":
            continue
        prop = propstat.find(f"{_D}prop")
        if prop is None:
            continue
        kind = prop.find(f"{_D}resourcetype")
        if kind is not None and kind.find(f"{_D}collection") is not None:
            collection = True
        props["size"] = props.get("size") or _text(prop, f"{_D}getcontentlength")
        props["etag"] = props.get("etag") or _text(prop, f"{_D}getetag")
        props["fileid"] = props.get("fileid") or _text(prop, f"{_OC}fileid")
        props["free"] = props.get("free") or _text(prop, f"{_D}quota-available-bytes")
        props["origin"] = props.get("origin") or _text(prop, f"{_NC}trashbin-original-location")
        for checksum in prop.iter(f"{_OC}checksum"):
            # One element may hold several values, separated by spaces or commas.
            checksums.extend((checksum.text or "").replace(",", " ").split())
    size = props.get("size")
    etag = props.get("etag")
    return DavEntry(
        path=path,
        is_collection=collection,
        size=int(size) if size and size.isdigit() else None,
        etag=etag.strip('"') if etag else None,
        file_id=props.get("fileid"),
        checksums=tuple(checksums),
        free_bytes=_count(props.get("free")),
        original_location=props.get("origin"),
    )


def _count(value: str | None) -> int | None:
    """A non-negative byte count; RFC 4331 servers say -1, -2 or -3 for "unknown"."""
    return int(value) if value and value.isdigit() else None


def parse_multistatus(body: bytes, server: str) -> list[DavEntry]:
    """The entries of a 207 reply; a body that is not a multistatus is a failed reply."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise TargetUnavailable(f"{server} sent a listing that is not valid XML.") from exc
    if root.tag != f"{_D}multistatus":
        raise TargetUnavailable(f"{server} sent something other than a WebDAV listing.")
    return [e for e in (_entry(r) for r in root.findall(f"{_D}response")) if e is not None]
