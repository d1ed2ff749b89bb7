import pytest
from hypothesis import given
from hypothesis import strategies as st

from crm_bridge.phone import COUNTRIES, PhoneNormalizer

GERMANY = PhoneNormalizer("DE")


@pytest.mark.parametrize("raw, expected", [
    ("+49 30 1234567", "+49301234567"),
    ("+49 (0)30 123-45-67", "+49301234567"),
    ("0049 30 1234567", "+49301234567"),
    ("030 / 123 45 67", "+49301234567"),
    ("0151-23456789", "+4915123456789"),
    ("+1 (212) 555-0142", "+12125550142"),
    ("0044 20 7946 0958", "+442079460958"),
])
def test_german_default(raw, expected):
    assert GERMANY.e164(raw) == expected


@pytest.mark.parametrize("raw", ["", None, "1001", "030", "anonymous", "+0123456", "+1234",
                                 "+1234567890123456", "49301234567"])
def test_not_public_numbers_normalise_to_none(raw):
    assert GERMANY.e164(raw) is None


@pytest.mark.parametrize("country, raw, expected", [
    ("US", "(212) 555-0142", "+12125550142"),
    ("US", "1-212-555-0142", "+12125550142"),
    ("US", "011 49 30 1234567", "+49301234567"),
    ("US", "112 555 0142", None),  # area codes never start with 0 or 1
    ("IT", "06 1234 5678", "+390612345678"),  # Italy keeps the leading 0
    ("GB", "020 7946 0958", "+442079460958"),
    ("FR", "01 23 45 67 89", "+33123456789"),
    ("RU", "8 495 123 45 67", "+74951234567"),  # trunk prefix 8
    ("ES", "912 345 678", "+34912345678"),
])
def test_national_numbers_of_other_countries(country, raw, expected):
    assert PhoneNormalizer(country).e164(raw) == expected


def test_unknown_default_country_is_refused():
    with pytest.raises(ValueError, match="unknown country 'XX'"):
        PhoneNormalizer("XX")


@given(st.sampled_from(sorted(COUNTRIES)), st.text(alphabet="0123456789+ -()./", max_size=25))
def test_result_is_always_e164_or_none(country, raw):
    result = PhoneNormalizer(country).e164(raw)
    assert result is None or (result[0] == "+" and result[1:].isdigit() and 8 <= len(result) <= 16)


@given(st.from_regex(r"\+[1-9][0-9]{7,13}", fullmatch=True))
def test_normalising_is_idempotent(number):
    assert GERMANY.e164(number) == number
    assert GERMANY.e164(GERMANY.e164(number)) == number
