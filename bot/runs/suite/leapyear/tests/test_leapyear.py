from leapyear import is_leap


def test_common_rules():
    assert is_leap(2024) and not is_leap(2023)


def test_centuries():
    assert not is_leap(1900) and not is_leap(2100) and is_leap(2000)
