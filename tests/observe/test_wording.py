"""Times in plain words in the owner's zone, and the words for how a copy was verified."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.clock import duration_words, iso, spoken
from app.observe.wording import destination_name, local_time, verification_words
from app.targets.base import VERIFICATION_WORDS

BERLIN = ZoneInfo("Europe/Berlin")
# 21:38 in Berlin on 2 Dec 2026 (UTC+1 in winter)
NOW = datetime(2026, 12, 2, 20, 38, tzinfo=UTC)


@pytest.mark.parametrize(
    ("moment", "said"),
    [
        (NOW, "today 21:38"),
        (NOW - timedelta(hours=21), "today 00:38"),
        (NOW - timedelta(hours=22), "yesterday 23:38"),
        (datetime(2026, 12, 1, 7, 2, tzinfo=UTC), "yesterday 08:02"),
        (datetime(2026, 7, 3, 12, 10, tzinfo=UTC), "3 Jul 14:10"),  # summer: UTC+2
        (datetime(2025, 12, 3, 13, 10, tzinfo=UTC), "3 Dec 2025, 14:10"),
        (NOW + timedelta(minutes=5, seconds=20), "in 5 minutes"),
        (NOW + timedelta(seconds=20), "in less than a minute"),
        (NOW + timedelta(hours=3), "in 3 hours"),
        (NOW + timedelta(days=3), "5 Dec 21:38"),
    ],
)
def test_times_are_said_in_the_owners_zone_in_plain_words(moment: datetime, said: str) -> None:
    """Past: today/yesterday/date; future: 'in N minutes'; always the configured zone."""
    assert spoken(moment, BERLIN, reference=NOW) == said
    assert spoken(iso(moment), BERLIN, reference=NOW) == said  # as stored: ISO in UTC


def test_the_zone_changes_the_day_not_just_the_hour() -> None:
    """01:30 UTC is 'today' in Tokyo but 'yesterday' in New York for the same instant."""
    reference = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    moment = datetime(2026, 12, 2, 1, 30, tzinfo=UTC)
    assert spoken(moment, ZoneInfo("Asia/Tokyo"), reference=reference) == "today 10:30"
    assert spoken(moment, ZoneInfo("America/New_York"), reference=reference) == "yesterday 20:30"


def test_nothing_is_a_dash_and_the_page_filter_is_the_same_words() -> None:
    """The Jinja filter and the CLI call the same formatter; no raw ISO comes out."""
    assert local_time(None) == "—"
    stamp = iso(datetime.now(UTC))
    said = local_time(stamp, BERLIN)
    assert said.startswith("today ") and "T" not in said and "+" not in said


@pytest.mark.parametrize(
    ("seconds", "said"),
    [
        (3, "a few seconds"),
        (40, "40 seconds"),
        (60, "1 minute"),
        (300, "5 minutes"),
        (7200, "2 hours"),
        (86400 * 3, "3 days"),
    ],
)
def test_durations_in_words(seconds: float, said: str) -> None:
    """Waits in journal lines ('Trying again in 5 minutes.') round down to one unit."""
    assert duration_words(seconds) == said


def test_verification_methods_are_words_without_codes() -> None:
    """Every method a target names has words, none of them a code like 'sha256-reread'."""
    assert verification_words("sha256-reread") == "read back and compared"
    for words in VERIFICATION_WORDS.values():
        assert "sha256" not in words and "+" not in words and "-" not in words.split()[0]
    assert destination_name("nextcloud") == "NextCloud"
