"""The state retention table: every row cites its source; the periods compute as the table says."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from backoffice.catalog.profiles import ProfileError, check_period, expiry, profile, profiles

END = datetime(2025, 12, 31, 22, 30, tzinfo=timezone.utc)


def test_every_profile_names_its_legal_source_and_nrw_is_14_days():
    assert set(profiles()) == {"NW", "BW", "BY", "HE"}
    assert all(p.source.strip() and p.state for p in profiles().values())
    assert profile("NW").period == "14d" and "§ 15c PolG NRW" in profile("NW").source
    assert "§ 24 OBG NRW" in profile("NW").source


def test_periods_days_calendar_months_and_end_of_shift():
    assert expiry(END, profile("NW").period, 12) == END + timedelta(days=14)
    assert expiry(END, profile("BW").period, 12) == END + timedelta(days=28)
    assert expiry(END, profile("BY").period, 12) == datetime(2026, 2, 28, 22, 30, tzinfo=timezone.utc)
    assert expiry(END, profile("HE").period, 10) == END + timedelta(hours=10)


@pytest.mark.parametrize("bad", ["14", "two weeks", "-1d", "3y", ""])
def test_a_bad_period_or_profile_is_refused_clearly(bad):
    with pytest.raises(ProfileError, match="must be"):
        check_period(bad)
    with pytest.raises(ProfileError, match="unknown retention profile"):
        profile("XX")
