def page_count(total: int, size: int) -> int:
    if size < 1:
        raise ValueError("page size must be at least 1")
    return total // size


def paginate(items: list, size: int) -> list[list]:
    return [items[i * size:(i + 1) * size] for i in range(page_count(len(items), size))]
