"""The admin token file: made once with mode 0600, the same for everyone who asks."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

from app.tokens import ensure_admin_token, hash_token, tokens_match


def ask_together(path: Path, count: int) -> list[str]:
    """Call ensure_admin_token from `count` threads released at the same instant."""
    start = threading.Barrier(count)
    results: list[str] = []

    def ask() -> None:
        start.wait()
        try:
            results.append(ensure_admin_token(path))
        except Exception as exc:
            results.append(repr(exc))

    threads = [threading.Thread(target=ask) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_processes_asking_at_once_all_get_the_same_token(tmp_path: Path) -> None:
    """Service and CLI starting together agree on one token; no error, no temp file left."""
    for round_number in range(20):
        path = tmp_path / str(round_number) / "admin-token"
        results = ask_together(path, 6)
        assert len(set(results)) == 1, results
        assert results[0].startswith("pra_")
        assert path.read_text().strip() == results[0]
        assert [p.name for p in path.parent.iterdir()] == ["admin-token"]
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_an_empty_token_file_is_replaced_by_a_real_token(tmp_path: Path) -> None:
    """An empty file must not become an empty admin token (no one could log in)."""
    path = tmp_path / "admin-token"
    path.write_text("")
    token = ensure_admin_token(path)
    assert token.startswith("pra_") and len(token) > 40
    assert ensure_admin_token(path) == token


def test_tokens_are_compared_by_hash_and_stored_as_hex() -> None:
    """hash_token is a SHA-256 hex digest; tokens_match tells tokens apart."""
    assert len(hash_token("prd_x")) == 64
    assert tokens_match("prd_x", "prd_x")
    assert not tokens_match("prd_x", "prd_y")
