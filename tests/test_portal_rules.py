"""The parties' side's pure rules: masking another party's data, and the review deadlines."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from server.cases import LOCAL_TZ
from server.portal.masking import mask_id_number, mask_name, mask_phone
from server.portal.periods import Calendar, deadline, last_day, within


def test_another_partys_data_is_masked_the_way_the_12123_app_shows_it() -> None:
    assert mask_name("张三") == "张*"
    assert mask_name("欧阳娜娜") == "欧***"
    assert mask_name("李") == "李*"
    assert mask_id_number("530102199001011234") == "5301**********1234"
    assert mask_phone("13812348000") == "138****8000"
    assert mask_phone("12345") == "*****"


def beijing(y: int, m: int, d: int, hh: int = 12, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=LOCAL_TZ)


def test_the_day_of_delivery_does_not_count() -> None:
    # Tuesday 2026-12-01, delivered at 09:00 Beijing time: the three days are Wed, Thu, Fri.
    delivered = beijing(2026, 12, 1, 9)
    cal = Calendar()
    assert last_day(delivered, 3, cal) == date(2026, 12, 4)
    assert deadline(delivered, 3, cal) == beijing(2026, 12, 5, 0)
    assert within(delivered, 3, cal, beijing(2026, 12, 4, 23, 59))
    assert not within(delivered, 3, cal, beijing(2026, 12, 5, 0, 0))


def test_days_are_counted_in_beijing_time_not_utc() -> None:
    # 23:30 UTC on 30 November is 07:30 on 1 December in Beijing: delivery day is 1 December.
    delivered = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)
    assert last_day(delivered, 3, Calendar()) == date(2026, 12, 4)


def test_a_period_ending_on_a_rest_day_ends_on_the_next_working_day() -> None:
    # Wednesday 2026-12-02 + 3 days = Saturday the 5th: extended to Monday the 7th.
    assert last_day(beijing(2026, 12, 2), 3, Calendar()) == date(2026, 12, 7)
    # A public holiday on that Monday pushes it to Tuesday.
    assert last_day(beijing(2026, 12, 2), 3, Calendar(holidays={date(2026, 12, 7)})) == date(2026, 12, 8)
    # A weekend made a working day (调休) ends the period that day.
    assert last_day(beijing(2026, 12, 2), 3, Calendar(working_weekends={date(2026, 12, 5)})) == date(2026, 12, 5)


def test_longer_periods_count_the_same_way() -> None:
    accepted = beijing(2026, 12, 1)
    # 30 days after Tuesday 1 December is Thursday 31 December.
    assert last_day(accepted, 30, Calendar()) == date(2026, 12, 31)
    assert deadline(accepted, 30, Calendar()) - deadline(accepted, 29, Calendar()) == timedelta(days=1)
