"""Lexical similarity for guidance memory and patterns: a code-aware tokenizer, BM25, path mentions.

BM25 is written out here (a dozen lines) rather than taken from rank-bm25, whose Okapi variant gives
every document a score of zero when the corpus has one or two documents, which is exactly the size of
a young repository's memory. The IDF used is Lucene's, `ln(1 + (N - n + 0.5) / (n + 0.5))`, positive for
any corpus size; a document that shares no term with the query scores 0.
"""

from __future__ import annotations

import math
import posixpath
import re
from collections import Counter
from collections.abc import Iterable, Sequence

STOPWORDS = frozenset(
    "the a an and or not of to in on for is are be by it this that with as at from if else when then "
    "should must can do does use used into out so but no yes we you i our your its was were has have".split()
)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
# a relative path with a directory or a file extension, e.g. src/app.py, docs/guide, setup.cfg
_PATH = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)+[\w.-]+|[\w-]{2,}\.[A-Za-z][\w]{0,7})(?![\w/-])")


def tokens(text: str) -> list[str]:
    """Lower-case words with identifiers split as well as kept whole: `parse_url` gives parse_url,
    parse, url; `HttpClient` gives httpclient, http, client. Stopwords and one-letter words are dropped."""
    out: list[str] = []
    for word in _WORD.findall(text):
        parts = [p for piece in word.split("_") for p in _CAMEL.findall(piece)]
        for token in {word.lower(), *(p.lower() for p in parts)} if len(parts) > 1 else {word.lower()}:
            if len(token) > 1 and token not in STOPWORDS:
                out.append(token)
    return out


def mentioned_paths(text: str) -> set[str]:
    """Paths a text mentions (`src/app.py`, `README.md`), without a leading `./` and trailing dots."""
    found = set()
    for match in _PATH.findall(text):
        path = match.rstrip(".").removeprefix("./")
        if path and not path.startswith(("http", "www.")) and not re.fullmatch(r"[\d.]+", path):
            found.add(path)
    return found


def path_affinity(path: str | None, paths: Iterable[str]) -> float:
    """1.0 when `path` is one of `paths`, 0.5 when it shares a directory or a file name with one, else 0."""
    if not path:
        return 0.0
    best = 0.0
    for other in paths:
        if other == path:
            return 1.0
        same_dir = posixpath.dirname(other) == posixpath.dirname(path) and posixpath.dirname(path) != ""
        if same_dir or posixpath.basename(other) == posixpath.basename(path):
            best = 0.5
    return best


class BM25:
    def __init__(self, documents: Sequence[list[str]], *, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.counts = [Counter(doc) for doc in documents]
        self.lengths = [len(doc) for doc in documents]
        self.avg_length = (sum(self.lengths) / len(self.lengths)) if documents else 0.0
        frequency: Counter[str] = Counter(term for doc in self.counts for term in doc)
        n = len(documents)
        self.idf = {term: math.log(1 + (n - f + 0.5) / (f + 0.5)) for term, f in frequency.items()}

    def scores(self, query: list[str]) -> list[float]:
        terms = set(query)
        out = []
        for counts, length in zip(self.counts, self.lengths, strict=True):
            score = 0.0
            norm = self.k1 * (1 - self.b + self.b * length / self.avg_length) if self.avg_length else self.k1
            for term in terms:
                tf = counts.get(term, 0)
                if tf:
                    score += self.idf[term] * tf * (self.k1 + 1) / (tf + norm)
            out.append(score)
        return out


def similarities(query: str, documents: Sequence[str]) -> list[float]:
    """BM25 of each document against the query, scaled to [0, 1] by the best one (0 for no overlap)."""
    if not documents:
        return []
    scores = BM25([tokens(d) for d in documents]).scores(tokens(query))
    top = max(scores)
    return [s / top if top > 0 else 0.0 for s in scores]
