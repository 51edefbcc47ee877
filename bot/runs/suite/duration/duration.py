import re

UNITS = {"h": 3600, "m": 3600, "s": 1}


def parse_duration(text: str) -> int:
    """Seconds in a duration like 1h30m, 45s or 2h."""
    parts = re.findall(r"(\d+)([hms])", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {text!r}")
    return sum(int(n) * UNITS[u] for n, u in parts)
