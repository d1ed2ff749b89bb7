from datetime import date

import pytest

from ivr.actions import Play, SayDigits, SayNumber
from ivr.say import say_date, say_money, speak

pytestmark = pytest.mark.unit


def test_dollars_and_cents():
    assert say_money(1234, "USD") == [SayNumber(12), Play(("digits/dollars",)), Play(("vm-and",)),
                                      SayNumber(34), Play(("cents",))]


def test_one_dollar_is_singular_and_zero_cents_are_not_said():
    assert say_money(100, "USD") == [SayNumber(1), Play(("letters/dollar",))]


def test_cents_only():
    assert say_money(1, "USD") == [SayNumber(1), Play(("cent",))]


def test_zero_is_zero_dollars():
    assert say_money(0, "USD") == [SayNumber(0), Play(("digits/dollars",))]


def test_negative_amount_starts_with_minus():
    assert say_money(-250, "USD")[:2] == [Play(("digits/minus",)), SayNumber(2)]


def test_date_says_weekday_month_ordinal_and_year():
    assert say_date(date(2025, 3, 14)) == [Play(("digits/day-5", "digits/mon-2", "digits/h-14")), SayNumber(2025)]


@pytest.mark.parametrize(("day", "ordinal"), [
    (date(2025, 3, 21), ("digits/20", "digits/h-1")),
    (date(2025, 3, 30), ("digits/h-30",)),
    (date(2025, 3, 31), ("digits/30", "digits/h-1")),
])
def test_ordinals_above_twenty_are_composed(day, ordinal):
    assert say_date(day)[0].prompts[2:] == ordinal


def test_sunday_is_day_zero():
    assert say_date(date(2025, 3, 16))[0].prompts[0] == "digits/day-0"


def test_speak_reads_values_as_text():
    assert speak("42", "number") == [SayNumber(42)]
    assert speak(12345, "digits") == [SayDigits("12345")]
    assert speak("2025-03-14", "date") == say_date(date(2025, 3, 14))
    assert speak("150", "money", "USD") == say_money(150, "USD")


@pytest.mark.parametrize(("value", "say_as"), [("12.5", "number"), ("12a", "digits"), (None, "money"),
                                               ("14/03/2025", "date")])
def test_speak_rejects_what_cannot_be_said(value, say_as):
    with pytest.raises(ValueError):
        speak(value, say_as)
