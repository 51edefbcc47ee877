from dedupe import dedupe


def test_order_is_kept():
    assert dedupe(["pear", "apple", "pear", "fig", "apple"]) == ["pear", "apple", "fig"]


def test_numbers():
    assert dedupe([3, 1, 3, 2, 1]) == [3, 1, 2]
