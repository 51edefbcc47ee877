import pytest

from duration import parse_duration


def test_parts():
    assert parse_duration("45s") == 45 and parse_duration("2h") == 7200


def test_mixed():
    assert parse_duration("1h30m") == 5400 and parse_duration("10m5s") == 605


def test_invalid():
    with pytest.raises(ValueError):
        parse_duration("ten minutes")
