import pytest

from temperature import c_to_f, f_to_c


def test_c_to_f():
    assert c_to_f(100) == pytest.approx(212) and c_to_f(-40) == pytest.approx(-40)


def test_round_trip():
    assert f_to_c(c_to_f(37.5)) == pytest.approx(37.5)
