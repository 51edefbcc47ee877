def dedupe(items: list) -> list:
    """Items without repeats, first occurrences in their original order."""
    return list(set(items))
