"""Money and dates spoken with SAY NUMBER and the Asterisk core sound files.

``digits/day-0`` (Sunday) to ``digits/day-6``, ``digits/mon-0`` (January) to ``digits/mon-11``
and the ordinals ``digits/h-1`` to ``digits/h-20``, ``digits/h-30`` ship with
asterisk-core-sounds-en. ``cent`` and ``cents`` come with asterisk-extra-sounds-en.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from ivr.actions import Action, Play, SayDigits, SayNumber


@dataclass(frozen=True)
class CurrencyPrompts:
    major_one: str
    major_many: str
    minor_one: str
    minor_many: str


CURRENCIES = {
    "USD": CurrencyPrompts("letters/dollar", "digits/dollars", "cent", "cents"),
}


def say_money(amount_cents: int, currency: str) -> list[Action]:
    """``-1234`` USD: "minus twelve dollars and thirty four cents"; a zero part is left out."""
    prompts = CURRENCIES[currency]
    major, minor = divmod(abs(amount_cents), 100)
    spoken: list[Action] = [Play(("digits/minus",))] if amount_cents < 0 else []
    if major or not minor:  # "zero dollars" rather than silence
        spoken += _counted(major, prompts.major_one, prompts.major_many)
    if major and minor:
        spoken.append(Play(("vm-and",)))
    if minor:
        spoken += _counted(minor, prompts.minor_one, prompts.minor_many)
    return spoken


def _counted(count: int, unit_one: str, unit_many: str) -> list[Action]:
    return [SayNumber(count), Play((unit_one if count == 1 else unit_many,))]


def say_date(day: date) -> list[Action]:
    """"Friday, March fourteenth, 2025"."""
    weekday = (day.weekday() + 1) % 7  # the sound files count from Sunday
    prompts = (f"digits/day-{weekday}", f"digits/mon-{day.month - 1}", *_ordinal(day.day))
    return [Play(prompts), SayNumber(day.year)]


def _ordinal(day_of_month: int) -> tuple[str, ...]:
    if day_of_month <= 20 or day_of_month % 10 == 0:
        return (f"digits/h-{day_of_month}",)
    tens, units = divmod(day_of_month, 10)
    return (f"digits/{tens * 10}", f"digits/h-{units}")


def speak(value: object, say_as: str, currency: str = "USD") -> list[Action]:
    """The actions saying ``value``; ValueError when it cannot be said that way."""
    text = str(value).strip()
    if say_as == "number":
        return [SayNumber(int(text))]
    if say_as == "digits":
        if not text.isdigit():
            raise ValueError(f"{text!r} is not digits")
        return [SayDigits(text)]
    if say_as == "money":
        return say_money(int(text), currency)
    if say_as == "date":
        return say_date(date.fromisoformat(text[:10]))
    raise ValueError(f"cannot say as {say_as!r}")
