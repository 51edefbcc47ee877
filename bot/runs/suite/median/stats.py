def median(values: list[float]) -> float:
    if not values:
        raise ValueError("median of no values")
    values.sort()
    return values[len(values) // 2]
