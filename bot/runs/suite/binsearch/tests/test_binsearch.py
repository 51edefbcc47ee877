from binsearch import index_of

ITEMS = [1, 3, 5, 7, 9, 11]


def test_every_element_is_found():
    assert [index_of(ITEMS, x) for x in ITEMS] == list(range(len(ITEMS)))


def test_missing_elements():
    assert index_of(ITEMS, 4) == -1 and index_of(ITEMS, 12) == -1 and index_of([], 1) == -1


def test_single_element():
    assert index_of([5], 5) == 0
