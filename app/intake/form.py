"""Streaming multipart/form-data straight into the spool, without a second copy.

The framework's form parser would first spool every file to its own temp file; here the
python-multipart parser's callbacks write each file part directly into a spool writer, so
each byte is written to disk once. Parts with a file name are files (under any field
name); `name`, `captured_at` and `sha256` text fields describe the files, the n-th value
belonging to the n-th file.
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import cast

from python_multipart import MultipartParser
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import parse_options_header

from app.errors import ApiError, BadRequest, PayloadTooLarge
from app.hashing import CHUNK_SIZE
from app.intake.ingest import too_large
from app.off_loop import off_loop
from app.socket_body import Buffer
from app.store.spool import SpoolWriter

__all__ = ["FormFile", "FormUpload", "boundary_of"]

DESCRIBING_FIELDS = ("name", "captured_at", "sha256")
MAX_FIELD_BYTES = 64 * 1024
# What one form may hold besides its file bytes. Each file part holds an open spool file
# until the form is stored, so the file cap keeps a form well below the descriptor limit;
# the part and text caps bound what a form of many small text fields keeps in memory.
MAX_FILE_PARTS = 100
MAX_PARTS = 1000
MAX_TEXT_BYTES = 1024 * 1024
# File data the parser hands over in pieces at least this big is written without copying;
# smaller pieces (around a boundary split between two buffers) are gathered first.
SMALL_PIECE = 64 * 1024


def malformed(detail: str) -> BadRequest:
    return BadRequest(
        f"The multipart form could not be read ({detail}); nothing was stored. Send the "
        "file as multipart/form-data, e.g. curl -F file=@IMG_0001.HEIC.",
        code="malformed_multipart",
    )


class OutOfDescriptors(ApiError):
    """The process has no file descriptor left for one more spool file (503: try later)."""

    status = 503


def form_too_large(detail: str, code: str) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The form {detail}; nothing was stored. Send at most {MAX_FILE_PARTS} files and "
        f"{MAX_PARTS} parts per form, with under {MAX_TEXT_BYTES // 1024} KiB of text fields.",
        code=code,
    )


def boundary_of(content_type: str | None) -> bytes:
    """The boundary from a multipart/form-data Content-Type, or a 400."""
    if not content_type:
        raise malformed("no Content-Type header")
    kind, options = parse_options_header(content_type)
    if kind != b"multipart/form-data" or not options.get(b"boundary"):
        raise malformed("Content-Type is not multipart/form-data with a boundary")
    return options[b"boundary"]


@dataclass
class FormFile:
    writer: SpoolWriter
    filename: str


@dataclass
class _Part:
    headers: dict[str, bytes] = field(default_factory=dict)
    field_name: str = ""
    file: FormFile | None = None
    text: bytearray = field(default_factory=bytearray)
    buffer: bytearray = field(default_factory=bytearray)


class FormUpload:
    """Parses one request body; `files` and `fields` are ready once `finish` returns."""

    def __init__(
        self,
        boundary: bytes,
        open_writer: Callable[[], SpoolWriter],
        max_file_bytes: int,
        describing: tuple[str, ...] = DESCRIBING_FIELDS,
    ) -> None:
        self.files: list[FormFile] = []
        self.fields: dict[str, list[str]] = {name: [] for name in describing}
        self._open_writer = open_writer
        self._limit = max_file_bytes
        self._part = _Part()
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._ended = False
        self._parts = 0
        self._text_bytes = 0
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._on_part_begin,
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
                "on_end": self._on_end,
            },
            max_header_count=16,
        )

    async def read(self, chunks: AsyncIterator[bytes]) -> None:
        """Feed the body through the parser in a worker thread, one buffer in flight."""
        in_flight: asyncio.Future[None] | None = None
        buffer = bytearray()
        try:
            async for chunk in chunks:
                buffer += chunk
                if len(buffer) >= CHUNK_SIZE:
                    if in_flight is not None:
                        await in_flight
                    # The filled buffer itself goes to the parser (no copy).
                    data, buffer = buffer, bytearray()
                    in_flight = asyncio.ensure_future(off_loop(self._feed, data))
            if in_flight is not None:
                await in_flight
            await off_loop(self._feed, buffer)
            await off_loop(self._finish)
        except BaseException:
            if in_flight is not None:
                await asyncio.gather(in_flight, return_exceptions=True)
            await off_loop(self.discard)
            raise

    def read_pieces(self, pieces: Iterator[Buffer]) -> None:
        """Feed the body through the parser here, in a worker thread (a body from the socket)."""
        try:
            for piece in pieces:
                self._feed(piece)
            self._finish()
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        for form_file in self.files:
            form_file.writer.discard()
        if self._part.file is not None:
            self._part.file.writer.discard()

    def _feed(self, data: Buffer) -> None:
        try:
            # The parser only finds, slices and indexes, which a bytearray supports.
            self._parser.write(cast(bytes, data))
        except MultipartParseError as exc:
            raise malformed(str(exc) or "bad framing") from None

    def _finish(self) -> None:
        try:
            self._parser.finalize()
        except MultipartParseError as exc:
            raise malformed(str(exc) or "bad framing") from None
        if not self._ended:
            raise malformed("the body ended before the closing boundary; it was cut off")
        if not self.files:
            raise malformed("it holds no file part (a part with a filename)")

    # -- parser callbacks (run in the worker thread) ---------------------------------------

    def _on_part_begin(self) -> None:
        self._parts += 1
        if self._parts > MAX_PARTS:
            raise form_too_large(f"has more than {MAX_PARTS} parts", "too_many_parts")
        self._part = _Part()

    def _count_text(self, size: int) -> None:
        """Text fields and part headers share one budget: both are kept in memory."""
        self._text_bytes += size
        if self._text_bytes > MAX_TEXT_BYTES:
            raise form_too_large(
                f"has over {MAX_TEXT_BYTES // 1024} KiB of text fields and part headers",
                "form_text_too_large",
            )

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._count_text(end - start)
        self._header_field += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._count_text(end - start)
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        name = bytes(self._header_field).decode("latin-1").lower()
        self._part.headers[name] = bytes(self._header_value)
        self._header_field.clear()
        self._header_value.clear()

    def _on_headers_finished(self) -> None:
        disposition = self._part.headers.get("content-disposition")
        if disposition is None:
            raise malformed("a part has no Content-Disposition header")
        _, options = parse_options_header(disposition)
        self._part.field_name = options.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" in options:
            if len(self.files) >= MAX_FILE_PARTS:
                raise form_too_large(f"has more than {MAX_FILE_PARTS} files", "too_many_files")
            filename = options[b"filename"].decode("utf-8", "replace")
            self._part.file = FormFile(self._open_spool_file(), filename)

    def _open_spool_file(self) -> SpoolWriter:
        try:
            return self._open_writer()
        except OSError as exc:
            if exc.errno not in (errno.EMFILE, errno.ENFILE):
                raise
            raise OutOfDescriptors(
                "The service has too many files open to take this form now; nothing was "
                "stored. Send it again in a minute, or with fewer files.",
                code="too_many_open_files",
            ) from None

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self._part
        if part.file is None:
            self._count_text(end - start)
            part.text += data[start:end]
            if len(part.text) > MAX_FIELD_BYTES:
                raise malformed(f"the text field {part.field_name!r} is over 64 KiB")
            return
        if part.file.writer.size + len(part.buffer) + end - start > self._limit:
            raise too_large(self._limit)
        piece = memoryview(data)[start:end]
        if not part.buffer and len(piece) >= SMALL_PIECE:
            part.file.writer.write(piece)  # the usual case: most of a fed buffer, not copied
            return
        part.buffer += piece
        if len(part.buffer) >= CHUNK_SIZE:
            part.file.writer.write(part.buffer)
            part.buffer = bytearray()

    def _on_part_end(self) -> None:
        part = self._part
        if part.file is not None:
            if part.buffer:
                part.file.writer.write(part.buffer)
            self.files.append(part.file)
            self._part = _Part()
        elif part.field_name in self.fields:
            self.fields[part.field_name].append(part.text.decode("utf-8", "replace"))

    def _on_end(self) -> None:
        self._ended = True

    def values_for(self, field_name: str) -> list[str | None]:
        """One value per file for a describing field, or a 400 if they cannot be paired."""
        values = self.fields[field_name]
        if not values:
            return [None] * len(self.files)
        if len(values) != len(self.files):
            raise BadRequest(
                f"The form has {len(self.files)} files but {len(values)} {field_name!r} "
                f"fields; send one {field_name!r} per file, in the same order, or none.",
                code="fields_do_not_match_files",
            )
        return list(values)
