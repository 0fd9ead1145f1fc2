import pytest

from enrichment_pipeline.registers import orgnr


@pytest.mark.parametrize("number", ["974760673", "923609016", "910747711", "889640782"])
def test_known_valid_numbers_pass(number: str) -> None:
    assert orgnr.invalid_reason(number) is None


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "missing_orgnr"),
        ("", "missing_orgnr"),
        (974760673, "orgnr_not_a_string"),
        ("97476067", "orgnr_not_nine_digits"),
        ("97476067x", "orgnr_not_nine_digits"),
        ("974760674", "orgnr_bad_check_digit"),
    ],
)
def test_invalid_values_name_their_reason(value: object, reason: str) -> None:
    assert orgnr.invalid_reason(value) == reason


def test_prefixes_whose_check_digit_would_be_ten_are_never_issued() -> None:
    never = [p for p in range(10_000_000, 10_001_000) if orgnr.from_prefix(p) is None]
    assert never, "some prefixes must give remainder 1 (check digit 10)"
    for prefix in never:
        assert orgnr.check_digit(f"{prefix:08d}") is None


def test_numbers_need_not_start_with_8_or_9() -> None:
    number = orgnr.from_prefix(41_234_567) or orgnr.from_prefix(41_234_568)
    assert number is not None and number.startswith("4")
    assert orgnr.is_valid(number)
