"""Phone numbers to E.164 (``+`` and up to 15 digits), for lookups by ANI and by customer phone.

The common cases only, without a numbering-plan database: ``+CC...``, ``00CC...`` (``011CC...``
from a NANP country), national numbers with a trunk prefix (``030 1234567`` in Germany),
national numbers of countries without one (``06 1234567`` in Italy keeps its 0), and NANP's
10 or 11 digits. A number that fits none of them, such as a 4-digit internal extension, is not a
customer's phone and normalises to ``None``. The ``phonenumbers`` library would validate ranges
per country too; a screen-pop only needs one stable key per number, so it is not worth a
dependency.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# ISO 3166 alpha-2 -> (country calling code, trunk prefix or "" when national numbers have none).
COUNTRIES: dict[str, tuple[str, str]] = {
    "AT": ("43", "0"), "AU": ("61", "0"), "BE": ("32", "0"), "BR": ("55", "0"), "CA": ("1", "1"),
    "CH": ("41", "0"), "CN": ("86", "0"), "CZ": ("420", ""), "DE": ("49", "0"), "DK": ("45", ""),
    "ES": ("34", ""), "FI": ("358", "0"), "FR": ("33", "0"), "GB": ("44", "0"), "GR": ("30", ""),
    "IE": ("353", "0"), "IN": ("91", "0"), "IT": ("39", ""), "JP": ("81", "0"), "LU": ("352", ""),
    "MX": ("52", ""), "NL": ("31", "0"), "NO": ("47", ""), "NZ": ("64", "0"), "PL": ("48", ""),
    "PT": ("351", ""), "RU": ("7", "8"), "SE": ("46", "0"), "TR": ("90", "0"), "US": ("1", "1"),
    "ZA": ("27", "0"),
}
_NANP_COUNTRIES = frozenset({"US", "CA"})

# Separators people and PBXs put into numbers; "(0)" is the trunk prefix some write after +CC.
_FORMATTING = re.compile(r"[\s.\-/()]")
_OPTIONAL_TRUNK = re.compile(r"^(\+|00)(\d{1,3})\s*\(0\)")
_E164_DIGITS = re.compile(r"^[1-9]\d{6,14}$")
_NANP_NATIONAL = re.compile(r"^[2-9]\d{2}[2-9]\d{6}$")
# Shorter national significant numbers are internal extensions or service codes.
_MIN_NATIONAL_DIGITS = 6


@dataclass(frozen=True)
class PhoneNormalizer:
    """Normalises numbers for one default country, used for numbers written without a country code."""

    default_country: str

    def __post_init__(self) -> None:
        if self.default_country not in COUNTRIES:
            raise ValueError(f"unknown country {self.default_country!r}; known: {', '.join(sorted(COUNTRIES))}")

    def e164(self, raw: str | None) -> str | None:
        """``+<digits>``, or ``None`` when ``raw`` is not a reachable public number."""
        if not raw:
            return None
        text = _OPTIONAL_TRUNK.sub(r"\1\2", raw.strip())
        text = _FORMATTING.sub("", text)
        if text.startswith("+"):
            return _checked(text[1:])
        if not text.isdigit():
            return None
        international = self._after_international_prefix(text)
        if international is not None:
            return _checked(international)
        return self._national(text)

    def _after_international_prefix(self, digits: str) -> str | None:
        prefix = "011" if self.default_country in _NANP_COUNTRIES else "00"
        return digits[len(prefix):] if digits.startswith(prefix) else None

    def _national(self, digits: str) -> str | None:
        country_code, trunk = COUNTRIES[self.default_country]
        if self.default_country in _NANP_COUNTRIES:
            if len(digits) == 11 and digits.startswith("1"):
                digits = digits[1:]
            return "+1" + digits if _NANP_NATIONAL.match(digits) else None
        if trunk:
            if not digits.startswith(trunk):
                return None
            digits = digits[len(trunk):]
        if len(digits) < _MIN_NATIONAL_DIGITS:
            return None
        return _checked(country_code + digits)


def _checked(digits: str) -> str | None:
    return "+" + digits if _E164_DIGITS.match(digits) else None
