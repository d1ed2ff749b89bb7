"""The screen-pop payload from the IVR's data, our store, the external CRM, the DNIS label, history."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from crm_bridge.external import NOT_ASKED, UNAVAILABLE
from crm_bridge.interactions import Page
from crm_bridge.phone import PhoneNormalizer
from cti.desktop.pop import PopBuilder

pytestmark = pytest.mark.unit

JOSE = {"id": 7, "name": "José Müller", "tier": "gold", "value_score": 80, "vip": True, "churn_risk": False}
NEIGHBOUR = {"id": 8, "name": "Shared Line", "tier": "bronze", "value_score": 1, "vip": False, "churn_risk": True}
IVR_DATA = {"ani": "2125550100", "caller_name": "JOSE MULLER", "dnis": "100", "account": "12345",
            "customer_id": "7", "ivr_path": "main > billing > ask_account", "ivr.account": "12345"}


class Customers:
    phones = PhoneNormalizer("US")

    def __init__(self, by_phone=(NEIGHBOUR,), fail=False) -> None:
        self.by_phone, self.fail = list(by_phone), fail

    async def get(self, customer_id):
        return {7: JOSE, 8: NEIGHBOUR}.get(customer_id)

    async def find_by_phone(self, number):
        if self.fail:
            raise OSError("database unreachable")
        return self.by_phone


class Interactions:
    def __init__(self) -> None:
        self.queries = []

    async def page(self, query):
        self.queries.append(query)
        rows = [{"id": n, "linkedid": f"17000.{n}", "started_at": datetime(2024, 5, n, tzinfo=UTC),
                 "disposition_code": "resolved", "disposition_notes": f"note {n}", "ivr_data": "{}"}
                for n in range(1, query.limit + 1)]
        return Page(rows, None)


class Dnis:
    async def service_for(self, dialled):
        return {"100": "Billing hotline"}.get(dialled)


async def test_the_pop_carries_the_call_the_identified_customer_and_its_last_five_interactions():
    interactions = Interactions()
    pop = await PopBuilder(Customers(), interactions, Dnis()).build(
        "pbx:17000.1", "inbound", IVR_DATA, queue="billing", wait_seconds=12.34)
    assert pop["customer"] == JOSE  # the account the caller typed beats the shared line
    assert pop["customers"] == [NEIGHBOUR] and pop["flags"] == ["VIP"]
    assert (pop["ani"], pop["dnis"], pop["dnis_label"], pop["queue"], pop["wait_seconds"]) == \
        ("2125550100", "100", "Billing hotline", "billing", 12.3)
    assert pop["ivr"] == {"path": ["main", "billing", "ask_account"], "data": {"account": "12345"}}
    assert pop["account"] == "12345" and pop["external_status"] == NOT_ASKED
    assert interactions.queries[0].filters == {"customer_id": 7}
    assert [item["id"] for item in pop["history"]] == [2, 3, 4, 5, 6]  # this call left out, five kept
    assert pop["history"][0]["disposition_notes"] == "note 2" and "ivr_data" not in pop["history"][0]


async def test_a_caller_known_only_by_number_gets_that_customers_history():
    interactions = Interactions()
    data = {"ani": "2125550100"}
    pop = await PopBuilder(Customers(by_phone=[JOSE]), interactions, Dnis()).build("pbx:1.1", "callback", data)
    assert pop["customer"] == JOSE and pop["kind"] == "callback"


async def test_without_the_crm_the_pop_still_shows_what_the_call_says():
    pop = await PopBuilder(Customers(fail=True), Interactions(), Dnis()).build("pbx:1.1", "inbound", IVR_DATA)
    assert pop["ani"] == "2125550100" and pop["account"] == "12345" and pop["customer"] is None
    assert pop["external_status"] == UNAVAILABLE and pop["error"] == "customer data unavailable"
