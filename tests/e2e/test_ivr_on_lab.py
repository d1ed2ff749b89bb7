"""The IVR on the real lab: DTMF as SIP INFO from sipp through a two-level menu with an
account entry; the path, the data and the customer reach the call and its interaction record."""

import asyncio
from pathlib import Path

from cti.agi.server import AgiServer
from cti.callmodel.events import CallEnded, CallStarted
from cti.recorder import CallRecorder
from cti.sessions import InboundSessions
from crm_bridge.customers import CustomerRepository
from crm_bridge.logger import InteractionLogger
from crm_bridge.phone import PhoneNormalizer
from ivr import load_flows
from tests.e2e.conftest import WAIT

BILLING_MENU = Path(__file__).resolve().parents[1] / "flows" / "billing_menu.toml"


async def test_dtmf_menu_path_and_account_reach_the_call_and_its_record(link, lab_config, calls, store, tmp_path):
    (tmp_path / "lab.toml").write_text(BILLING_MENU.read_text())
    phones = PhoneNormalizer("US")
    customers = CustomerRepository(store.pool, phones)
    await customers.create(customers.parse({"name": "José Müller", "tier": "gold", "account_numbers": ["12345"]}))
    interaction_log = InteractionLogger(store.pool, tmp_path / "spool.jsonl", phones, flush_interval=0.1)
    await interaction_log.start()
    CallRecorder(link.model, link.bus, interaction_log)
    server = AgiServer("127.0.0.1", lab_config.agi.port)
    server.route("inbound", InboundSessions(link.model, link.bus, load_flows(tmp_path), customers.find_by_account).handle)
    await server.start()
    try:
        calls("José Müller", "5554321", hold_ms=10000, dtmf=("1", "1", "12345#"))
        started = await link.recorder.wait_for(lambda e: isinstance(e, CallStarted) and e.ani == "5554321")
        await link.recorder.wait_for(lambda e: isinstance(e, CallEnded) and e.call_id == started.call_id, timeout=60)
        call = next(c for c in link.model.recent_ended if c.call_id == started.call_id)
        ivr = call.data["ivr"]
        assert ivr["path"] == ["lab:main", "lab:billing", "lab:ask_account", "lab:find_customer", "lab:to_billing"]
        assert ivr["values"] == {"account": "12345"}
        assert ivr["customer"]["name"] == "José Müller" and ivr["customer_account"] == "12345"
        assert ivr["outcome"]["kind"] == "to_queue" and ivr["outcome"]["queue"] == "billing"
        await interaction_log.close()
        row = await _interaction(store.pool, call.linkedid)
        assert row["ivr_path"] == ivr["path"] and '"account": "12345"' in row["ivr_data"]
        assert server.stats.handler_errors == 0
    finally:
        await server.close()
        await interaction_log.close()


async def _interaction(pool, linkedid: str):
    async with asyncio.timeout(WAIT):
        while True:
            row = await pool.fetchrow("SELECT ivr_path, ivr_data::text FROM interactions WHERE linkedid = $1", linkedid)
            if row:
                return row
            await asyncio.sleep(0.1)




WRONG_ACCOUNT_FLOW = """
[flow]
dnis = ["100"]
default = true
operator_queue = "operator"

[defaults]
timeout_ms = 4000
retries = 2

[nodes.ask_account]
kind = "collect"
prompts = ["beep"]
store = "account"
min_len = 5
max_len = 10
terminator = "#"
lookup = "validate_account"
next = "to_billing"

[nodes.to_billing]
kind = "queue"
queue = "billing"
"""


async def test_a_wrong_account_three_times_reaches_the_fallback(link, lab_config, calls, store, tmp_path):
    (tmp_path / "wrong.toml").write_text(WRONG_ACCOUNT_FLOW)
    customers = CustomerRepository(store.pool, PhoneNormalizer("US"))
    server = AgiServer("127.0.0.1", lab_config.agi.port)
    server.route("inbound", InboundSessions(link.model, link.bus, load_flows(tmp_path), customers.find_by_account).handle)
    await server.start()
    try:
        calls("Wrong Account", "5553333", hold_ms=10000, dtmf=("99999#", "88888#", "77777#"))
        started = await link.recorder.wait_for(lambda e: isinstance(e, CallStarted) and e.ani == "5553333")
        await link.recorder.wait_for(lambda e: isinstance(e, CallEnded) and e.call_id == started.call_id, timeout=60)
        ivr = next(c for c in link.model.recent_ended if c.call_id == started.call_id).data["ivr"]
        assert ivr["path"].count("wrong:ask_account") == 1 and "wrong:to_billing" not in ivr["path"]
        assert ivr["outcome"]["kind"] == "to_queue" and ivr["outcome"]["queue"] == "operator"
        assert ivr["notes"] == ["invalid answer at wrong:ask_account after 3 tries"]  # not silence
    finally:
        await server.close()
