import pytest

from stack import Stack


def test_push_pop_peek():
    s = Stack()
    s.push(1)
    s.push(2)
    assert s.peek() == 2 and len(s) == 2
    assert s.pop() == 2 and s.peek() == 1


def test_empty():
    with pytest.raises(IndexError, match="pop from an empty stack"):
        Stack().pop()
    with pytest.raises(IndexError, match="peek at an empty stack"):
        Stack().peek()
