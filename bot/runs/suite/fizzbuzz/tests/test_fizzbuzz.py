from fizzbuzz import fizzbuzz


def test_plain_numbers():
    assert fizzbuzz(1) == "1" and fizzbuzz(7) == "7"


def test_fizz_and_buzz():
    assert fizzbuzz(9) == "Fizz" and fizzbuzz(10) == "Buzz"


def test_fizzbuzz():
    assert fizzbuzz(15) == "FizzBuzz" and fizzbuzz(45) == "FizzBuzz"
