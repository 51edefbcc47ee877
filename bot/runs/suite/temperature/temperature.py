def c_to_f(celsius: float) -> float:
    return celsius * 5 / 9 + 32


def f_to_c(fahrenheit: float) -> float:
    return (fahrenheit - 32) * 5 / 9
