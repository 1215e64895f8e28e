"""Login sessions of the status page: random ids kept in memory, each with a CSRF token.

The cookie holds only a random id (never the admin token); the server keeps a hash of it
with its expiry and CSRF token. Sessions live in memory, so a restart logs everyone out —
a small price for keeping no session secrets on disk.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass

__all__ = ["COOKIE_NAME", "Session", "SessionStore"]

COOKIE_NAME = "photo_relay_session"


@dataclass(frozen=True)
class Session:
    csrf_token: str
    expires_at: float


def _key(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class SessionStore:
    """Open sessions by hashed id; thread-safe."""

    def __init__(self, *, max_age_seconds: int) -> None:
        self.max_age_seconds = max_age_seconds
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def open(self) -> tuple[str, Session]:
        """A new session; returns its id (for the cookie) and the session."""
        session_id = secrets.token_urlsafe(32)
        session = Session(secrets.token_urlsafe(32), time.time() + self.max_age_seconds)
        with self._lock:
            self._forget_expired()
            self._sessions[_key(session_id)] = session
        return session_id, session

    def find(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        with self._lock:
            session = self._sessions.get(_key(session_id))
            if session is None or session.expires_at < time.time():
                return None
            return session

    def close(self, session_id: str | None) -> None:
        if session_id:
            with self._lock:
                self._sessions.pop(_key(session_id), None)

    @staticmethod
    def csrf_matches(session: Session, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(session.csrf_token, token)

    def _forget_expired(self) -> None:
        moment = time.time()
        for key in [k for k, s in self._sessions.items() if s.expires_at < moment]:
            del self._sessions[key]
