"""Uploads: PUT /v1/blobs/{sha256} (raw body) and POST /v1/uploads (multipart form)."""

from __future__ import annotations

import asyncio
from email.message import Message
from email.utils import collapse_rfc2231_value
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app.api.deps import DeviceDep, ServicesDep
from app.body_timeout import idle_limited
from app.errors import UnprocessableContent
from app.form_upload import FormUpload, boundary_of
from app.hashing import is_sha256_hex
from app.ingest import ClientMeta, Sealed, parse_captured_at
from app.receipts import Receipt

__all__ = ["router"]

router = APIRouter(tags=["uploads"])

# Room for multipart framing and text fields on top of the file size limit.
FORM_OVERHEAD = 1024 * 1024


class UploadedReceipt(Receipt):
    new: bool = False


class UploadResult(BaseModel):
    items: list[UploadedReceipt]
    new: int
    already_safe: int


def checked_hash(value: str) -> str:
    value = value.strip().lower()
    if not is_sha256_hex(value):
        raise UnprocessableContent(
            f"{value[:80]!r} is not a SHA-256: expected 64 hexadecimal characters.",
            code="bad_hash",
        )
    return value


def filename_from_disposition(header: str | None) -> str | None:
    """The file name of a `Content-Disposition: attachment; filename=...` header.

    The stdlib's email parser reads the header because it decodes the RFC 5987
    `filename*=UTF-8''...` form (python-multipart's parser drops it: multipart forbids it).
    RFC 6266 prefers `filename*` when both are given. A plain `filename` in raw UTF-8
    reaches us decoded as latin-1, so it is turned back into bytes and read as UTF-8.
    """
    if not header:
        return None
    message = Message()
    message["Content-Disposition"] = header
    plain: str | None = None
    for key, value in message.get_params([], header="content-disposition")[1:]:
        if key != "filename":
            continue
        if isinstance(value, tuple):
            return collapse_rfc2231_value(value, errors="replace") or None
        plain = value
    if not plain:
        return None
    return plain.encode("latin-1", "replace").decode("utf-8", "replace")


def declared_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    return int(value) if value and value.isdigit() else None


def receipt_response(receipt: Receipt, new: bool) -> JSONResponse:
    body = UploadedReceipt(**receipt.model_dump(), new=new)
    return JSONResponse(body.model_dump(), status_code=201 if new else 200)


@router.put(
    "/v1/blobs/{sha256}",
    response_model=UploadedReceipt,
    status_code=201,
    responses={200: {"model": UploadedReceipt, "description": "Already received"}},
    summary="Upload one file as the raw request body",
)
async def put_blob(
    sha256: str,
    request: Request,
    services: ServicesDep,
    device: DeviceDep,
    content_disposition: Annotated[str | None, Header()] = None,
    x_captured_at: Annotated[str | None, Header()] = None,
    name: Annotated[str | None, Query(max_length=4096)] = None,
    captured_at: Annotated[str | None, Query(max_length=100)] = None,
) -> JSONResponse:
    """Store the body as a file whose SHA-256 must equal `sha256`.

    201 with a receipt if the content is new, 200 with the existing receipt if it is not.
    The file name comes from `Content-Disposition` (or `?name=`), the capture time from
    `X-Captured-At` (or `?captured_at=`), ISO 8601.
    """
    claimed = checked_hash(sha256)
    meta = ClientMeta(
        name=filename_from_disposition(content_disposition) or name,
        captured_at=parse_captured_at(x_captured_at or captured_at),
        claimed_sha256=claimed,
    )
    known = await services.ingest.already_have(claimed, meta, device)
    if known is not None:
        return receipt_response(known, new=False)  # the body is not needed: nothing to store
    body = idle_limited(request.stream(), services.settings.upload_idle_timeout_seconds)
    writer = await services.ingest.receive(body, declared_size=declared_length(request))
    receipt, new = await services.ingest.commit(writer, meta, device)
    return receipt_response(receipt, new)


@router.post(
    "/v1/uploads",
    response_model=UploadResult,
    status_code=201,
    responses={200: {"model": UploadResult, "description": "Every file was already here"}},
    summary="Upload one or more files as multipart/form-data",
)
async def create_uploads(
    request: Request, services: ServicesDep, device: DeviceDep
) -> JSONResponse:
    """Store every file part of a form (any field name).

    Optional text fields `name`, `captured_at` (ISO 8601) and `sha256` describe the files,
    the n-th value belonging to the n-th file. 201 if any file was new, else 200.
    """
    boundary = boundary_of(request.headers.get("content-type"))
    limit = services.settings.max_upload_bytes
    await services.ingest.check_room(declared_length(request), framing=FORM_OVERHEAD)
    form = FormUpload(boundary, services.spool.open_writer, limit)
    await form.read(idle_limited(request.stream(), services.settings.upload_idle_timeout_seconds))
    try:
        names = form.values_for("name")
        dates = [parse_captured_at(v) for v in form.values_for("captured_at")]
        hashes = [checked_hash(v) if v else None for v in form.values_for("sha256")]
    except BaseException:
        await asyncio.to_thread(form.discard)
        raise
    sealed: list[Sealed] = []
    try:
        for index, part in enumerate(form.files):
            meta = ClientMeta(names[index] or part.filename or None, dates[index], hashes[index])
            sealed.append(await services.ingest.seal(part.writer, meta))
    except BaseException:
        await asyncio.to_thread(form.discard)
        raise
    items = []
    for one in sealed:
        receipt, new = await services.ingest.store(one, device)
        items.append(UploadedReceipt(**receipt.model_dump(), new=new))
    fresh = sum(1 for item in items if item.new)
    result = UploadResult(items=items, new=fresh, already_safe=len(items) - fresh)
    return JSONResponse(result.model_dump(), status_code=201 if fresh else 200)
