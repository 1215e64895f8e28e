"""The error tree. Every message is written for the person who has to act on it.

PhotoRelayError
├── ConfigurationError        settings that cannot work (shown at start-up)
├── HomeCopyDamaged           the copy kept here is missing or not the bytes received:
│                             the relay stops copying it until the file is sent again
├── ApiError                  a request we refuse; rendered as JSON with `status`
│   ├── BadRequest            400 malformed request (e.g. broken multipart)
│   ├── Unauthorized          401 missing, unknown or revoked token
│   ├── NotFound              404
│   ├── RequestTimeout        408 the body stopped arriving (idle too long between chunks)
│   ├── Conflict              409 (e.g. a device name already in use)
│   ├── PayloadTooLarge       413 over the size limit
│   ├── UnprocessableContent  422 empty file, hash mismatch, bad date
│   └── InsufficientStorage   507 the spool has no room
└── TargetError               the destination failed; the relay decides what happens next
    ├── TargetUnavailable     transient (down, timeout, cut connection, 5xx, 423, 429):
    │   │                     never a give-up; back off and probe until it answers again
    │   ├── TargetMaintenance server in maintenance: pause, attempts not counted
    │   └── DoesNotFit        this file is larger than the space left: it waits, others go on
    ├── TargetAuthFailed      credentials refused: pause the relay, never hammer
    ├── TargetFull            destination out of space: pause the relay
    ├── NameTaken             the path exists; the relay looks before it picks another
    ├── NameRefused           the server refuses (or changes) this name: the relay picks a safe one
    ├── VerificationFailed    the copy is not byte-identical: retry, `failed` when it repeats
    └── TargetRejected        permanent for this file (too large, a name refused for ever):
                              `failed` at once, the message says what a person must fix

The split the relay acts on is `TargetError.transient`: True only for TargetUnavailable
(and its subclasses); everything else needs the relay to pause or a person to act.
"""

from __future__ import annotations

__all__ = [
    "ApiError",
    "BadRequest",
    "ConfigurationError",
    "Conflict",
    "DoesNotFit",
    "HomeCopyDamaged",
    "InsufficientStorage",
    "NameRefused",
    "NameTaken",
    "NotFound",
    "PayloadTooLarge",
    "PhotoRelayError",
    "RequestTimeout",
    "TargetAuthFailed",
    "TargetError",
    "TargetFull",
    "TargetMaintenance",
    "TargetRejected",
    "TargetUnavailable",
    "Unauthorized",
    "UnprocessableContent",
    "VerificationFailed",
]


class PhotoRelayError(Exception):
    """Base of every error photo-relay raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigurationError(PhotoRelayError):
    """The settings cannot work; the message says which one and how to fix it."""


class HomeCopyDamaged(PhotoRelayError):
    """The home copy of an item is missing or its bytes no longer hash to its SHA-256.

    Retrying cannot help and copying it would deliver the wrong bytes: only the same file
    sent again (which the intake checks by its hash) can repair it.
    """


class ApiError(PhotoRelayError):
    """A request we refuse. `code` is stable for programs, `message` is for people."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class BadRequest(ApiError):
    status, code = 400, "bad_request"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"


class NotFound(ApiError):
    status, code = 404, "not_found"


class Conflict(ApiError):
    status, code = 409, "conflict"


class RequestTimeout(ApiError):
    status, code = 408, "body_timeout"


class PayloadTooLarge(ApiError):
    status, code = 413, "too_large"


class UnprocessableContent(ApiError):
    status, code = 422, "unprocessable"


class InsufficientStorage(ApiError):
    status, code = 507, "insufficient_storage"


class TargetError(PhotoRelayError):
    """The destination failed in a way the relay must handle."""

    # Whether waiting is the whole cure (the server is down, slow or busy). The one place
    # the relay learns "try later, for as long as it takes" from "a person must act".
    transient = False


class TargetUnavailable(TargetError):
    """Down, slow, locked or overloaded: the same request may work later."""

    transient = True

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        # Seconds the server asked us to wait (Retry-After on 429/503); None if it did not say.
        self.retry_after = retry_after


class TargetMaintenance(TargetUnavailable):
    """The server is in maintenance mode: wait (as a pause) without using up attempts."""


class DoesNotFit(TargetUnavailable):
    """The destination has some room, but not enough for this file: only it waits."""


class TargetAuthFailed(TargetError):
    """Credentials refused. Retrying would trip brute-force protection, so the relay pauses."""


class TargetFull(TargetError):
    """No space left at the destination; the relay pauses until there is."""


class NameTaken(TargetError):
    """Something already exists at the path; the relay looks at it before choosing a name."""


class NameRefused(TargetError):
    """The server refuses a name for good, or stored the file under another one.

    `characters` are the ones in the name that servers commonly refuse; the relay names
    the file again with them replaced (as for NextCloud's published rules).
    """

    def __init__(self, message: str, *, characters: frozenset[str]) -> None:
        super().__init__(message)
        self.characters = characters


class VerificationFailed(TargetError):
    """The copy at the destination does not match the original."""


class TargetRejected(TargetError):
    """The server will never accept this file as it is; the message says what to change."""
