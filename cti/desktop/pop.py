"""The screen-pop: what an agent's desktop shows of a call when it is offered, before the answer.

Built from the data the IVR gathered (``Offer.data``: ANI, caller name, DNIS, IVR path and values,
account, customer id), the customer record merged from our store and the external CRM
(``crm_bridge.external.screen_pop``), the DNIS's service label, and the customer's last
interactions with their dispositions and notes. The customer the IVR identified by account wins
over the one the caller's number names.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Protocol

import structlog

from crm_bridge.external import NOT_ASKED, UNAVAILABLE, ExternalCrm, screen_pop
from crm_bridge.interactions import Page, Query
from crm_bridge.phone import PhoneNormalizer

log = structlog.get_logger(__name__)

HISTORY_SIZE = 5
IVR_PREFIX = "ivr."
# What the pop shows of each past interaction.
HISTORY_FIELDS = ("id", "started_at", "direction", "queue", "service", "outcome", "agents", "talk_seconds",
                  "disposition_code", "disposition_notes")


class Customers(Protocol):
    phones: PhoneNormalizer

    async def get(self, customer_id: int) -> dict[str, Any] | None: ...
    async def find_by_phone(self, raw_number: str) -> list[dict[str, Any]]: ...


class Interactions(Protocol):
    async def page(self, query: Query) -> Page: ...


class DnisLabels(Protocol):
    async def service_for(self, dialed: str) -> str | None: ...


class PopBuilder:
    def __init__(self, customers: Customers, interactions: Interactions, dnis: DnisLabels,
                 external: ExternalCrm | None = None) -> None:
        self.customers = customers
        self.interactions = interactions
        self.dnis = dnis
        self.external = external

    async def build(self, call_id: str, kind: str, data: Mapping[str, str], *, queue: str | None = None,
                    wait_seconds: float | None = None) -> dict[str, Any]:
        """The pop of a call; ``data`` is the IVR's (``Offer.data``), or only ``ani``/``dnis``.
        Never raises: without the CRM the pop still shows what the call itself says."""
        pop = call_pop(call_id, kind, data, queue, wait_seconds)
        try:
            return pop | await self._customer_part(call_id, data)
        except Exception as error:
            log.warning("pop.crm_unavailable", error=f"{type(error).__name__}: {error}")
            return pop | {"customer": None, "customers": [], "flags": [], "external": {},
                          "external_status": UNAVAILABLE, "history": [], "error": "customer data unavailable"}

    async def _customer_part(self, call_id: str, data: Mapping[str, str]) -> dict[str, Any]:
        found, label, identified = await asyncio.gather(
            self._by_phone(data.get("ani", "")), self._label(data.get("dnis", "")),
            self._customer(data.get("customer_id", "")))
        customer = identified or found["customer"]
        return {"dnis_label": label, "customer": customer, "customers": found["customers"], "flags": flags(customer),
                "external": found["external"], "external_status": found["external_status"],
                "history": await self._history(customer, found["phone"], call_id)}

    async def _by_phone(self, ani: str) -> dict[str, Any]:
        if not ani:
            return {"phone": "", "customer": None, "customers": [], "external": {}, "external_status": NOT_ASKED}
        return await screen_pop(self.customers, self.external, self.customers.phones, ani)

    async def _label(self, dnis: str) -> str | None:
        return await self.dnis.service_for(dnis) if dnis else None

    async def _customer(self, customer_id: str) -> dict[str, Any] | None:
        return await self.customers.get(int(customer_id)) if customer_id.isdigit() else None

    async def _history(self, customer: dict | None, phone: str, call_id: str) -> list[dict[str, Any]]:
        """The last interactions of the customer (else of the number), this call left out."""
        if customer is not None:
            filters = {"customer_id": customer["id"]}
        elif phone.startswith("+"):
            filters = {"phone": phone}
        else:
            return []
        page = await self.interactions.page(Query(filters, limit=HISTORY_SIZE + 1))
        linkedid = call_id.partition(":")[2]
        rows = [row for row in page.items if row.get("linkedid") != linkedid][:HISTORY_SIZE]
        return [{name: row.get(name) for name in HISTORY_FIELDS} for row in rows]


def call_pop(call_id: str, kind: str, data: Mapping[str, str], queue: str | None,
             wait_seconds: float | None) -> dict[str, Any]:
    """The part of the pop the call carries itself (no lookup)."""
    return {
        "call_id": call_id, "kind": kind, "ani": data.get("ani", ""), "caller_name": data.get("caller_name", ""),
        "dnis": data.get("dnis", ""), "dnis_label": None, "queue": queue,
        "wait_seconds": round(wait_seconds, 1) if wait_seconds is not None else None,
        "account": data.get("account", ""),
        "ivr": {"path": [step for step in data.get("ivr_path", "").split(" > ") if step],
                "data": {key[len(IVR_PREFIX):]: value for key, value in data.items() if key.startswith(IVR_PREFIX)}},
    }


def flags(customer: Mapping[str, Any] | None) -> list[str]:
    """What the agent must notice at once."""
    if not customer:
        return []
    return [label for key, label in (("vip", "VIP"), ("churn_risk", "churn risk")) if customer.get(key)]


def transferred_pop(pop: Mapping[str, Any], from_agent: str, from_name: str, note: str,
                    attended: bool) -> dict[str, Any]:
    """The same pop for the agent a call is handed to, with who handed it on and their note."""
    return {**pop, "kind": "transfer",
            "transfer": {"from_agent": from_agent, "from_name": from_name, "note": note, "attended": attended}}
