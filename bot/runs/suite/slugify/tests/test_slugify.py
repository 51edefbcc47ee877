from slugify import slugify


def test_simple():
    assert slugify("Hello World") == "hello-world"


def test_punctuation_and_spaces():
    assert slugify("  Hello,  World! ") == "hello-world"
    assert slugify("C++ & Python 3") == "c-python-3"
