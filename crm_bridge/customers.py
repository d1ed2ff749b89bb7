"""Customers and the keys a call finds them by: phone numbers (E.164) and account numbers."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from crm_bridge.fields import Boolean, Choice, Context, Integer, ListOf, Phone, Text, ValidationError, parse_fields
from crm_bridge.phone import PhoneNormalizer

TIERS = ("bronze", "silver", "gold", "platinum")
ACCOUNT_NUMBER_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._/-]*"

# What a client may write; the importer reads the same declaration from CSV columns.
CUSTOMER_FIELDS = {
    "name": Text(200, description="Display name on the screen-pop"),
    "tier": Choice(TIERS, description="Set by RFM scoring (`cti crm score`); may be set by hand"),
    "value_score": Integer(0, 100, description="0-100, set by RFM scoring"),
    "vip": Boolean(),
    "churn_risk": Boolean(description="Set by RFM scoring for valuable customers gone quiet"),
    "notes": Text(10_000, min_length=0),
    "phones": ListOf(Phone(), 20, description="Normalised to E.164 on input"),
    "account_numbers": ListOf(Text(64, pattern=ACCOUNT_NUMBER_PATTERN), 20,
                              description="Unique across customers"),
}
CUSTOMER_REQUIRED = frozenset({"name"})
_KEY_FIELDS = ("phones", "account_numbers")
_COLUMN_FIELDS = tuple(name for name in CUSTOMER_FIELDS if name not in _KEY_FIELDS)

# Read-only fields a customer has beside the writable ones; their schema for the OpenAPI document.
CUSTOMER_READ_ONLY = {
    "id": {"type": "integer"},
    "recency_score": {"type": ["integer", "null"], "minimum": 1, "maximum": 5},
    "frequency_score": {"type": ["integer", "null"], "minimum": 1, "maximum": 5},
    "monetary_score": {"type": ["integer", "null"], "minimum": 1, "maximum": 5},
    "scored_at": {"type": ["string", "null"], "format": "date-time"},
    "created_at": {"type": "string", "format": "date-time"},
    "updated_at": {"type": "string", "format": "date-time"},
}

_SELECT = """
SELECT c.id, c.name, c.tier, c.value_score, c.vip, c.churn_risk, c.notes,
       ARRAY(SELECT p.e164 FROM customer_phones p WHERE p.customer_id = c.id ORDER BY p.position) AS phones,
       ARRAY(SELECT a.account_number FROM customer_accounts a WHERE a.customer_id = c.id
             ORDER BY a.account_number) AS account_numbers,
       c.recency_score, c.frequency_score, c.monetary_score, c.scored_at, c.created_at, c.updated_at
FROM customers c
"""
_BY_ID = _SELECT + "WHERE c.id = $1"
_BY_PHONE = _SELECT + "WHERE c.id IN (SELECT customer_id FROM customer_phones WHERE e164 = $1) ORDER BY c.id"
_BY_ACCOUNT = _SELECT + "WHERE c.id = (SELECT customer_id FROM customer_accounts WHERE account_number = $1)"


class CustomerRepository:
    def __init__(self, pool: asyncpg.Pool, phones: PhoneNormalizer) -> None:
        self._pool = pool
        self._phones = phones

    @property
    def phones(self) -> PhoneNormalizer:
        return self._phones

    def parse(self, data: dict[str, Any], *, partial: bool = False, from_text: bool = False) -> dict[str, Any]:
        """Validated fields of a create (or, ``partial``, an update); raises ValidationError."""
        return parse_fields(CUSTOMER_FIELDS, data, Context(self._phones, from_text),
                            required=frozenset() if partial else CUSTOMER_REQUIRED)

    async def create(self, fields: dict[str, Any], connection: asyncpg.Connection | None = None) -> int:
        """Insert a parsed customer; returns its id. ValidationError when an account number is taken."""
        async with _transaction(self._pool, connection) as conn:
            # Column names come from the fixed declaration, never from input; values are parameters.
            columns = [name for name in _COLUMN_FIELDS if name in fields]
            placeholders = ", ".join(f"${n}" for n in range(1, len(columns) + 1))
            customer_id = await conn.fetchval(
                f"INSERT INTO customers ({', '.join(columns)}) VALUES ({placeholders}) RETURNING id",
                *(fields[name] for name in columns))
            await _replace_keys(conn, customer_id, fields)
            return customer_id

    async def update(self, customer_id: int, fields: dict[str, Any]) -> bool:
        """Change the named fields (phones and account numbers are replaced as a whole)."""
        async with _transaction(self._pool, None) as conn:
            columns = [name for name in _COLUMN_FIELDS if name in fields]
            assignments = "".join(f", {name} = ${n}" for n, name in enumerate(columns, start=2))
            found = await conn.fetchval(
                f"UPDATE customers SET updated_at = now(){assignments} WHERE id = $1 RETURNING id",
                customer_id, *(fields[name] for name in columns))
            if found is None:
                return False
            await _replace_keys(conn, customer_id, fields)
            return True

    async def delete(self, customer_id: int) -> bool:
        """Remove the customer; their interactions stay, unlinked (customer_id becomes NULL)."""
        status = await self._pool.execute("DELETE FROM customers WHERE id = $1", customer_id)
        return status == "DELETE 1"

    async def get(self, customer_id: int) -> dict[str, Any] | None:
        row = await self._pool.fetchrow(_BY_ID, customer_id)
        return dict(row) if row else None

    async def find_by_phone(self, raw_number: str) -> list[dict[str, Any]]:
        """Customers with this number, in any notation; several when the number is shared."""
        e164 = self._phones.e164(raw_number)
        if e164 is None:
            return []
        return [dict(row) for row in await self._pool.fetch(_BY_PHONE, e164)]

    async def find_by_account(self, account_number: str) -> dict[str, Any] | None:
        row = await self._pool.fetchrow(_BY_ACCOUNT, account_number.strip())
        return dict(row) if row else None


@asynccontextmanager
async def _transaction(pool: asyncpg.Pool, connection: asyncpg.Connection | None):
    """A transaction on ``connection`` (a savepoint inside the caller's), else on a pooled one."""
    if connection is not None:
        async with connection.transaction():
            yield connection
        return
    async with pool.acquire() as own, own.transaction():
        yield own


async def _replace_keys(conn: asyncpg.Connection, customer_id: int, fields: dict[str, Any]) -> None:
    if "phones" in fields:
        await conn.execute("DELETE FROM customer_phones WHERE customer_id = $1", customer_id)
        await conn.execute(
            "INSERT INTO customer_phones (e164, customer_id, position) "
            "SELECT e164, $1, position FROM unnest($2::text[]) WITH ORDINALITY AS p (e164, position)",
            customer_id, fields["phones"])
    if "account_numbers" in fields:
        await conn.execute("DELETE FROM customer_accounts WHERE customer_id = $1", customer_id)
        taken = await conn.fetch(
            "INSERT INTO customer_accounts (account_number, customer_id) "
            "SELECT number, $1 FROM unnest($2::text[]) AS number "
            "ON CONFLICT (account_number) DO NOTHING RETURNING account_number",
            customer_id, fields["account_numbers"])
        _refuse_taken_accounts(fields["account_numbers"], {row["account_number"] for row in taken})


def _refuse_taken_accounts(wanted: list[str], inserted: set[str]) -> None:
    taken = [number for number in wanted if number not in inserted]
    if taken:
        # Raising inside the transaction rolls the whole create or update back.
        raise ValidationError({"account_numbers": f"already used by another customer: {', '.join(taken)}"})
