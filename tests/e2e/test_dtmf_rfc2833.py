"""DTMF as RFC 4733 telephone-events on the real lab, beside SIP INFO.

sipp plays sip-tester's RFC 2833 captures (renumbered per call, see cti.lab.sipp) to the lab's
`trunk-rfc4733` endpoint (dtmf_mode=rfc4733), which the INVITE's X-CTI-DTMF header selects;
INFO calls stay on `trunk` (dtmf_mode=info). The same two-level menu with an account entry
(tests/flows/billing_menu.toml), with a repeated digit, must see the same path and data.
"""

from pathlib import Path

import pytest

from cti.agi.server import AgiServer
from cti.callmodel.events import CallEnded, CallStarted
from cti.sessions import InboundSessions
from crm_bridge.customers import CustomerRepository
from crm_bridge.phone import PhoneNormalizer
from ivr import load_flows

BILLING_MENU = Path(__file__).resolve().parents[1] / "flows" / "billing_menu.toml"


@pytest.mark.parametrize(("dtmf_mode", "endpoint", "number"),
                         [("rfc2833", "PJSIP/trunk-rfc4733-", "5554733"), ("info", "PJSIP/trunk-", "5554734")])
async def test_menu_path_and_account_arrive_by_either_dtmf_method(link, lab_config, calls, store, tmp_path,
                                                                  dtmf_mode, endpoint, number):
    (tmp_path / "lab.toml").write_text(BILLING_MENU.read_text())
    customers = CustomerRepository(store.pool, PhoneNormalizer("US"))
    await customers.create(customers.parse({"name": "Ana Event", "account_numbers": ["12345"]}))
    server = AgiServer("127.0.0.1", lab_config.agi.port)
    sessions = InboundSessions(link.model, link.bus, load_flows(tmp_path), customers.find_by_account)
    server.route("inbound", sessions.handle)
    await server.start()
    try:
        calls("Ana Event", number, hold_ms=10000, dtmf=("1", "1", "12345#"), dtmf_mode=dtmf_mode)
        started = await link.recorder.wait_for(lambda e: isinstance(e, CallStarted) and e.ani == number)
        # The header picks the endpoint, and with it Asterisk's DTMF method.
        assert started.channel.startswith(endpoint) and (dtmf_mode == "rfc2833") == ("rfc4733" in started.channel)
        await link.recorder.wait_for(lambda e: isinstance(e, CallEnded) and e.call_id == started.call_id, timeout=60)
        ivr = next(c for c in link.model.recent_ended if c.call_id == started.call_id).data["ivr"]
        assert ivr["path"] == ["lab:main", "lab:billing", "lab:ask_account", "lab:find_customer", "lab:to_billing"]
        assert ivr["values"] == {"account": "12345"}
        assert ivr["customer"]["name"] == "Ana Event" and ivr["customer_account"] == "12345"
        assert ivr["outcome"]["kind"] == "to_queue" and ivr["outcome"]["queue"] == "billing"
        assert server.stats.handler_errors == 0
    finally:
        await server.close()
