import pytest

from roman import to_roman


def test_additive():
    assert to_roman(3) == "III" and to_roman(2023) == "MMXXIII"


def test_subtractive():
    assert [to_roman(n) for n in (4, 9, 40, 90, 400, 900, 1994)] == ["IV", "IX", "XL", "XC", "CD", "CM", "MCMXCIV"]


def test_range():
    with pytest.raises(ValueError):
        to_roman(0)
