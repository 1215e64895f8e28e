"""A multipart form from body to recorded items: the one path both form endpoints take.

`ingest_form` parses the body straight into the spool (`form.FormUpload`), pairs each file
with its describing fields (`name`, `captured_at`, `sha256`, and any extra ones the caller
names), then seals and stores every file through `Ingest`. Nothing is stored unless every
file of the form is sound: a wrong hash, an empty file or a bad date refuses the whole form.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from app.hashing import checked_sha256
from app.intake.form import DESCRIBING_FIELDS, FormUpload, boundary_of
from app.intake.ingest import ClientMeta, Ingest, Sealed, parse_captured_at
from app.intake.upload_body import Buffer, UploadBody
from app.off_loop import off_loop
from app.receipts import Receipt
from app.store.state import Device

__all__ = ["FORM_OVERHEAD", "FormItem", "ingest_form"]

# Room for multipart framing and text fields on top of the file size limit, so that a file
# of exactly the limit still fits in a form.
FORM_OVERHEAD = 1024 * 1024

# A form's describing fields, one value (or None) per file.
Columns = dict[str, list[str | None]]


@dataclass(frozen=True)
class FormItem:
    """One stored file of a form, with the raw text of the fields that describe it."""

    receipt: Receipt
    new: bool
    fields: dict[str, str | None]


async def ingest_form(
    ingest: Ingest,
    body: UploadBody,
    device: Device | None,
    *,
    extra_fields: tuple[str, ...] = (),
) -> list[FormItem]:
    """Store every file part of the form `body` (any field name); one item per file."""
    boundary = boundary_of(body.content_type)
    ingest.check_size(body.declared_size, framing=FORM_OVERHEAD)
    form = FormUpload(
        boundary,
        ingest.spool.open_writer,
        ingest.settings.max_upload_bytes,
        describing=(*DESCRIBING_FIELDS, *extra_fields),
    )
    claim = body.claim()
    if claim is None:
        await ingest.check_room(body.declared_size, framing=FORM_OVERHEAD)
        await form.read(body.chunks)
        columns, sealed = await off_loop(seal_all, ingest, form)
        return [await store_one(ingest, one, device, columns, i) for i, one in enumerate(sealed)]

    def take(pieces: Iterator[Buffer]) -> tuple[Columns, list[Sealed], list[tuple[Receipt, bool]]]:
        # The whole form in the reader thread: parse, seal and record every file.
        ingest.spool.ensure_room(body.declared_size or 0)
        form.read_pieces(pieces)
        columns, sealed = seal_all(ingest, form)
        return columns, sealed, [ingest.link_and_record(one, device) for one in sealed]

    columns, sealed, stored = await body.read(claim, take)
    items = []
    for index, (one, (receipt, created)) in enumerate(zip(sealed, stored, strict=True)):
        receipt, new = await ingest.after_store(one, receipt, created)
        items.append(FormItem(receipt, new, fields_of(columns, index)))
    return items


def seal_all(ingest: Ingest, form: FormUpload) -> tuple[Columns, list[Sealed]]:
    """Pair every file with its fields and seal it (blocking); nothing kept if one fails."""
    try:
        columns = {name: form.values_for(name) for name in form.fields}
        sealed = [
            ingest.seal_now(part.writer, file_meta(columns, index, part.filename))
            for index, part in enumerate(form.files)
        ]
    except BaseException:
        form.discard()
        raise
    return columns, sealed


def fields_of(columns: Columns, index: int) -> dict[str, str | None]:
    return {name: values[index] for name, values in columns.items()}


def file_meta(columns: Columns, index: int, filename: str) -> ClientMeta:
    """What the form's fields say of its `index`-th file (a bad date or hash is a 422)."""
    claimed = columns["sha256"][index]
    return ClientMeta(
        name=columns["name"][index] or filename or None,
        captured_at=parse_captured_at(columns["captured_at"][index]),
        claimed_sha256=checked_sha256(claimed) if claimed else None,
    )


async def store_one(
    ingest: Ingest,
    sealed: Sealed,
    device: Device | None,
    columns: Columns,
    index: int,
) -> FormItem:
    receipt, new = await ingest.store(sealed, device)
    return FormItem(receipt, new, fields_of(columns, index))
