"""Norwegian organisation numbers: nine digits with a modulus-11 check digit.

Weights 3,2,7,6,5,4,3,2 on digits 1-8; r = sum % 11; the check digit is 0 when r == 0,
else 11 - r; a result of 10 means the eight-digit prefix is never issued. No prefix is
assumed: most numbers start with 8 or 9, but not all.
"""

from __future__ import annotations

WEIGHTS: tuple[int, ...] = (3, 2, 7, 6, 5, 4, 3, 2)


def check_digit(prefix: str) -> int | None:
    """The check digit for an eight-digit prefix, or None when no valid number has that prefix."""
    if len(prefix) != 8 or not prefix.isdigit():
        raise ValueError(f"an organisation number prefix is eight digits, got {prefix!r}")
    remainder = sum(int(d) * w for d, w in zip(prefix, WEIGHTS)) % 11
    if remainder == 0:
        return 0
    digit = 11 - remainder
    return None if digit == 10 else digit


def invalid_reason(value: object) -> str | None:
    """Why `value` is not a valid organisation number, or None when it is one."""
    if value is None or value == "":
        return "missing_orgnr"
    if not isinstance(value, str):
        return "orgnr_not_a_string"
    if len(value) != 9 or not value.isdigit() or not value.isascii():
        return "orgnr_not_nine_digits"
    expected = check_digit(value[:8])
    if expected is None or expected != int(value[8]):
        return "orgnr_bad_check_digit"
    return None


def is_valid(value: object) -> bool:
    return invalid_reason(value) is None


def from_prefix(prefix: int) -> str | None:
    """The full number for an eight-digit integer prefix, or None when that prefix is never issued."""
    text = f"{prefix:08d}"
    digit = check_digit(text)
    return None if digit is None else text + str(digit)
