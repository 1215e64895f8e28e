"""Uploads: PUT /v1/blobs/{sha256} (raw body) and POST /v1/uploads (multipart form)."""

from __future__ import annotations

from email.message import Message
from email.utils import collapse_rfc2231_value
from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse

from app.api.deps import DeviceDep, IngestDep, UploadBodyDep
from app.api.replies import UploadedReceipt, UploadResult, form_response, receipt_response
from app.hashing import checked_sha256
from app.intake.form_items import ingest_form
from app.intake.ingest import ClientMeta, parse_captured_at

__all__ = ["router"]

router = APIRouter(tags=["uploads"])


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


@router.put(
    "/v1/blobs/{sha256}",
    response_model=UploadedReceipt,
    status_code=201,
    responses={200: {"model": UploadedReceipt, "description": "Already received"}},
    summary="Upload one file as the raw request body",
)
async def put_blob(
    sha256: str,
    body: UploadBodyDep,
    ingest: IngestDep,
    device: DeviceDep,
    content_disposition: Annotated[str | None, Header()] = None,
    x_captured_at: Annotated[str | None, Header()] = None,
    name: Annotated[str | None, Query(max_length=4096)] = None,
    captured_at: Annotated[str | None, Query(max_length=100)] = None,
) -> JSONResponse:
    """Store the body as a file whose SHA-256 must equal `sha256`.

    201 with a receipt if the content is new, 200 with the existing receipt if it is not;
    either way the whole body is read and hashed, and a body that does not hash to
    `sha256` is refused with 422.
    The file name comes from `Content-Disposition` (or `?name=`), the capture time from
    `X-Captured-At` (or `?captured_at=`), ISO 8601.
    """
    claimed = checked_sha256(sha256)
    meta = ClientMeta(
        name=filename_from_disposition(content_disposition) or name,
        captured_at=parse_captured_at(x_captured_at or captured_at),
        claimed_sha256=claimed,
    )
    # Read and hashed even when the hash is known: a body that is not what the URL says
    # is a 422, and the right bytes may repair a damaged home copy.
    receipt, new = await ingest.take_in(body, meta, device)
    return receipt_response(receipt, new)


@router.post(
    "/v1/uploads",
    response_model=UploadResult,
    status_code=201,
    responses={200: {"model": UploadResult, "description": "Every file was already here"}},
    summary="Upload one or more files as multipart/form-data",
)
async def create_uploads(body: UploadBodyDep, ingest: IngestDep, device: DeviceDep) -> JSONResponse:
    """Store every file part of a form (any field name).

    Optional text fields `name`, `captured_at` (ISO 8601) and `sha256` describe the files,
    the n-th value belonging to the n-th file. 201 if any file was new, else 200.
    """
    items = await ingest_form(ingest, body, device)
    return form_response(items)
