"""Declared input fields: one declaration gives both the validation and the OpenAPI schema.

The REST API (JSON bodies, query strings) and the CSV importer read the same declarations, so
a rule cannot differ between them or drift from the published document. Text sources (query
strings, CSV cells) give every value as a string; ``parse(..., from_text=True)`` converts it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from crm_bridge.phone import PhoneNormalizer

_TRUE_WORDS = frozenset({"true", "yes", "1", "y"})
_FALSE_WORDS = frozenset({"false", "no", "0", "n", ""})
# A CSV cell or query value holding several items separates them with ";".
LIST_SEPARATOR = ";"


class ValidationError(Exception):
    """Bad input: one message per field, answered as HTTP 422 ``{"errors": {...}}``."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors.items()))
        self.errors = dict(errors)


class FieldError(ValueError):
    pass


@dataclass(frozen=True)
class Context:
    """What parsing needs beyond the value itself."""

    phones: PhoneNormalizer
    from_text: bool = False


@dataclass(frozen=True)
class Text:
    max_length: int
    min_length: int = 1
    pattern: str | None = None
    description: str = ""

    def parse(self, value: Any, context: Context) -> str:
        if not isinstance(value, str):
            raise FieldError("must be a string")
        value = value.strip()
        if not self.min_length <= len(value) <= self.max_length:
            raise FieldError(f"must be {self.min_length}-{self.max_length} characters")
        if self.pattern and not re.fullmatch(self.pattern, value):
            raise FieldError(f"must match {self.pattern}")
        return value

    def schema(self) -> dict:
        schema = {"type": "string", "minLength": self.min_length, "maxLength": self.max_length}
        if self.pattern:
            schema["pattern"] = f"^{self.pattern}$"
        return _described(schema, self.description)


@dataclass(frozen=True)
class Integer:
    minimum: int
    maximum: int
    description: str = ""

    def parse(self, value: Any, context: Context) -> int:
        if context.from_text and isinstance(value, str) and re.fullmatch(r"-?\d{1,18}", value.strip()):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise FieldError("must be an integer")
        if not self.minimum <= value <= self.maximum:
            raise FieldError(f"must be between {self.minimum} and {self.maximum}")
        return value

    def schema(self) -> dict:
        return _described({"type": "integer", "minimum": self.minimum, "maximum": self.maximum},
                          self.description)


@dataclass(frozen=True)
class Boolean:
    description: str = ""

    def parse(self, value: Any, context: Context) -> bool:
        if context.from_text and isinstance(value, str):
            word = value.strip().lower()
            if word in _TRUE_WORDS | _FALSE_WORDS:
                return word in _TRUE_WORDS
        if not isinstance(value, bool):
            raise FieldError("must be true or false")
        return value

    def schema(self) -> dict:
        return _described({"type": "boolean"}, self.description)


@dataclass(frozen=True)
class Choice:
    values: tuple[str, ...]
    description: str = ""

    def parse(self, value: Any, context: Context) -> str:
        if isinstance(value, str) and value.strip() in self.values:
            return value.strip()
        raise FieldError("must be one of " + ", ".join(self.values))

    def schema(self) -> dict:
        return _described({"type": "string", "enum": list(self.values)}, self.description)


@dataclass(frozen=True)
class Timestamp:
    description: str = ""

    def parse(self, value: Any, context: Context) -> datetime:
        try:
            parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            parsed = None
        if parsed is None:
            raise FieldError("must be an ISO 8601 date-time, e.g. 2024-05-01T08:00:00Z")
        if parsed.tzinfo is None:
            raise FieldError("needs a time zone offset, e.g. Z or +02:00")
        return parsed

    def schema(self) -> dict:
        return _described({"type": "string", "format": "date-time"}, self.description)


@dataclass(frozen=True)
class Phone:
    description: str = ""

    def parse(self, value: Any, context: Context) -> str:
        normalised = context.phones.e164(value) if isinstance(value, str) else None
        if normalised is None:
            raise FieldError(f"{value!r} is not a phone number (E.164, or national for "
                             f"{context.phones.default_country})")
        return normalised

    def schema(self) -> dict:
        return _described({"type": "string", "example": "+4930123456"}, self.description)


@dataclass(frozen=True)
class ListOf:
    item: Text | Phone | Choice
    max_items: int
    description: str = ""

    def parse(self, value: Any, context: Context) -> list:
        if context.from_text and isinstance(value, str):
            value = [part for part in value.split(LIST_SEPARATOR) if part.strip()]
        if not isinstance(value, list):
            raise FieldError("must be a list")
        if len(value) > self.max_items:
            raise FieldError(f"at most {self.max_items} items")
        parsed = []
        for position, item in enumerate(value):
            try:
                parsed.append(self.item.parse(item, context))
            except FieldError as error:
                raise FieldError(f"item {position + 1}: {error}") from None
        if len(set(parsed)) != len(parsed):
            raise FieldError("has duplicates")
        return parsed

    def schema(self) -> dict:
        return _described({"type": "array", "items": self.item.schema(), "maxItems": self.max_items},
                          self.description)


Field = Text | Integer | Boolean | Choice | Timestamp | Phone | ListOf


def parse_fields(spec: Mapping[str, Field], data: Mapping[str, Any], context: Context,
                 required: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The fields of ``data`` parsed by ``spec``; every problem is collected into one ValidationError.

    Absent optional fields are left out (a partial update changes only what it names); unknown
    fields are errors, so a typo is not silently ignored.
    """
    errors = {name: "unknown field" for name in data if name not in spec}
    errors |= {name: "is required" for name in required if data.get(name) is None}
    values = {}
    for name, field in spec.items():
        if name in errors or data.get(name) is None:
            continue
        try:
            values[name] = field.parse(data[name], context)
        except FieldError as error:
            errors[name] = str(error)
    if errors:
        raise ValidationError(errors)
    return values


def object_schema(spec: Mapping[str, Field], required: frozenset[str] = frozenset()) -> dict:
    schema = {"type": "object", "additionalProperties": False,
              "properties": {name: field.schema() for name, field in spec.items()}}
    if required:
        schema["required"] = sorted(required)
    return schema


def _described(schema: dict, description: str) -> dict:
    return schema | {"description": description} if description else schema
