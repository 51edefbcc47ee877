"""Word frequencies of a text."""

from collections import Counter


def words(text: str) -> list[str]:
    return [w.strip(".,;:!?\"'()").lower() for w in text.split() if w.strip(".,;:!?\"'()")]


def top_words(text: str, n: int) -> list[tuple[str, int]]:
    """The n most frequent words with their counts, most frequent first (ties: alphabetical)."""
    counts = Counter(words(text))
    return sorted(counts.items(), key=lambda item: (item[1], item[0]))[:n]
