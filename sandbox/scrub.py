"""Secrets never leave through output: the values of the variables passed into the setup phase (a
`PIP_INDEX_URL` with a token in it, a proxy with a password, an `NPM_TOKEN` the operator added) are
replaced wherever the sandbox's output is kept or shown."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from sandbox.egress import PROXY_VARIABLES

REDACTED = "[redacted]"
NOT_SECRET = {"PIP_DEFAULT_TIMEOUT", "NO_PROXY", "no_proxy"}
MIN_LENGTH = 6  # shorter values ("1", "true") would blank out ordinary words


def secret_values(names: Iterable[str], environ: Mapping[str, str] | None = None) -> list[str]:
    """The values to scrub, longest first: each variable's whole value, and the credentials of every URL in it."""
    environ = os.environ if environ is None else environ
    found: set[str] = set()
    for name in {*names, *PROXY_VARIABLES} - NOT_SECRET:
        value = environ.get(name, "")
        if len(value) >= MIN_LENGTH:
            found.add(value)
        for word in value.replace(",", " ").split():
            try:
                url = urlsplit(word)
                user, password = url.username, url.password
            except ValueError:
                continue
            if password:
                found.update(v for v in (password, f"{user}:{password}") if len(v) >= MIN_LENGTH)
            elif user and len(user) >= MIN_LENGTH:
                found.add(user)  # a token used as the user name (https://TOKEN@host/)
    return sorted(found, key=len, reverse=True)


def scrub(text: str, values: Iterable[str]) -> str:
    for value in values:
        if value in text:
            text = text.replace(value, REDACTED)
    return text
