from wordfreq import top_words, words


def test_words_are_lower_case_without_punctuation():
    assert words("The cat, the HAT!") == ["the", "cat", "the", "hat"]


def test_most_frequent_first():
    text = "b a b c b a"
    assert top_words(text, 2) == [("b", 3), ("a", 2)]


def test_ties_are_alphabetical():
    assert top_words("y x z", 3) == [("x", 1), ("y", 1), ("z", 1)]
