from paginate import page_count, paginate


def test_full_pages():
    assert paginate([1, 2, 3, 4], 2) == [[1, 2], [3, 4]]


def test_partial_last_page():
    assert paginate(list(range(7)), 3) == [[0, 1, 2], [3, 4, 5], [6]]
    assert page_count(7, 3) == 3


def test_empty():
    assert paginate([], 5) == [] and page_count(0, 5) == 0
