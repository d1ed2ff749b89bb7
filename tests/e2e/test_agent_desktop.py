"""The agent desktop in headless Chromium on the real lab: two agents log in and go ready, a sipp call
from a known customer passes the IVR with an account entry, the first agent's page pops the
customer before the phone is answered, an attended transfer carries the data and the first
agent's note to the second agent's page, both wrap up with a disposition, and the interaction
record holds it all. Screenshots go to artifacts/.

Assembled in-process as the daemon does it (cti.app): FastAGI with the IVR, the ACD runtime, the
interaction recorder, the desks (cti.desktop.build_desks) and the HTTP app. Agents' phones are
sipp UAS processes (cti.lab.phones).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.async_api import expect

from acd.model import QueueSettings
from cti.desktop import build_desks
from cti.desktop.service import DeskSettings
from cti.http.auth import FirstMatch
from cti.http.crm_api import CrmStore
from cti.http.server import build_app
from cti.lab.phones import PhonePlan
from cti.metrics import Metrics
from crm_bridge.agents import AgentRepository
from crm_bridge.customers import CustomerRepository
from crm_bridge.interactions import InteractionOutcome, InteractionRecord
from crm_bridge.logger import InteractionLogger
from crm_bridge.phone import PhoneNormalizer
from tests.browser import chromium, open_page, screenshot, served
from tests.e2e.acd_support import CallCenter, agent
from tests.e2e.conftest import WAIT, until

PASSWORD = "desk-pass-1"
CALLER = "2125550100"
BILLING = QueueSettings("billing", "billing>=10", ring_timeout=20, wrap_up_seconds=120)
EXPECT_MS = WAIT * 1000


class DeskCenter(CallCenter):
    """The call center of the e2e ACD tests, with agent desktops and the HTTP app on top."""

    async def start(self, agent_phones: dict, flow: str = "billing_menu.toml",
                    outbound_interface: str = "") -> DeskCenter:
        agents = tuple(agent(agent_id, sip, billing=50) for agent_id, sip in agent_phones.items())
        await super().start((BILLING,), agents, flows=(flow,), outbound_interface=outbound_interface)
        self.desks = build_desks(self.pool, self.phones, self.acd, self.link.model, {"lab": self.link},
                                 recorder=self.recorder, settings=DeskSettings(outbound_interface=outbound_interface,
                                                                               outbound_wrap_up_seconds=30))
        await self.desks.start(self.link.bus)
        app = build_app(Metrics(), {}, FirstMatch(self.desks.sessions), CrmStore.from_pool(self.pool, self.phones),
                        desks=self.desks)
        self._served = served(app)
        self.url = await self._served.__aenter__()
        return self

    async def close(self) -> None:
        await self._served.__aexit__(None, None, None)
        await self.desks.close()
        await super().close()


async def seed(pool, phones: PhoneNormalizer, workdir: Path) -> int:
    """Agents with passwords, the dispositions, José Müller with an account and two past calls."""
    agents = AgentRepository(pool)
    for agent_id in ("a1", "a2"):
        await agents.save(agent_id, f"Agent {agent_id.upper()}", ["billing"])
        await agents.set_secret(agent_id, PASSWORD)
    await pool.execute("DELETE FROM dispositions")  # this test's own catalogue, not the default one
    await pool.execute("INSERT INTO dispositions (code, label) VALUES ('resolved', 'Resolved'), "
                       "('upgrade', 'Upgrade sold'), ('escalated', 'Escalated')")
    customers = CustomerRepository(pool, phones)
    jose = await customers.create(customers.parse({"name": "José Müller", "tier": "gold", "vip": True,
                                                   "value_score": 87, "phones": [CALLER],
                                                   "account_numbers": ["12345"]}))
    history = InteractionLogger(pool, workdir / "history-spool.jsonl", phones, flush_interval=0.05)
    await history.start()
    for days, code, notes in ((30, "resolved", "billing address changed"), (3, "escalated", "disputed invoice")):
        started = datetime.now(UTC) - timedelta(days=days)
        history.put(InteractionRecord("lab-history", f"h{days}", started, ani=CALLER, customer_id=jose,
                                      queue="billing", agents=("a9",), ended_at=started + timedelta(minutes=4),
                                      outcome=InteractionOutcome.COMPLETED, disposition_code=code,
                                      disposition_notes=notes))
    await history.close()
    return jose


@pytest.fixture
async def open_center(link, lab_config, store, tmp_path, phones):
    """Starts the call center; a1's phone answers after ``a1_rings_ms``, a2's as ``a2_plan`` says."""
    await seed(store.pool, PhoneNormalizer("US"), tmp_path)
    centers = []

    async def start(a1_rings_ms: int, a2_plan: PhonePlan = PhonePlan(answer_after_ms=1000), **options) -> DeskCenter:
        sips = {"a1": phones(PhonePlan(answer_after_ms=a1_rings_ms)), "a2": phones(a2_plan)}
        centers.append(await DeskCenter(link, lab_config, store.pool, tmp_path).start(sips, **options))
        return centers[0]

    yield start
    for instance in centers:
        await instance.close()


@pytest.fixture
async def center(open_center):
    # a1 lets its phone ring 3 s: time for the test to see the pop before the answer.
    return await open_center(3000)


@pytest.fixture
async def browser():
    async with chromium() as instance:
        yield instance


async def desktop(browser, center: DeskCenter, agent_id: str, errors: list):
    """A logged-in, ready agent desktop in its own browser context (its own localStorage)."""
    page = await open_page(browser, errors, viewport={"width": 1300, "height": 900})
    await page.goto(f"{center.url}/agent/")
    await page.fill("[name=agent_id]", agent_id)
    await page.fill("[name=password]", PASSWORD)
    await page.click("#login button")
    await expect(page.locator("body")).to_have_attribute("data-connection", "open", timeout=EXPECT_MS)
    await page.click("#ready")
    await expect(page.locator("#state")).to_have_attribute("data-state", "available", timeout=EXPECT_MS)
    return page


async def test_pop_attended_transfer_and_wrap_up_end_to_end(center, browser, calls, link):
    errors: list = []
    first = await desktop(browser, center, "a1", errors)
    second = await desktop(browser, center, "a2", errors)

    calls("José Müller", CALLER, hold_ms=180_000, dtmf=("1", "1", "12345#"))

    # The pop, while a1's phone still rings.
    await expect(first.locator("#banner")).to_be_visible(timeout=60_000)
    await expect(first.locator("#customer-name")).to_have_text("José Müller")
    assert await first.locator("#call").get_attribute("data-state") == "ringing"
    await expect(first.locator("#banner")).to_contain_text(CALLER)
    await expect(first.locator("dd[data-key=Account]")).to_have_text("12345")
    await expect(first.locator("dd[data-key='IVR path']")).to_contain_text("billing_menu:ask_account")
    await expect(first.locator("#customer-flags")).to_contain_text("VIP")
    history = await first.locator("#history tbody tr td:nth-child(5)").all_text_contents()
    assert history == ["disputed invoice", "billing address changed"]
    await screenshot(first, "agent_desktop_1_pop_before_answer")

    await expect(first.locator("#call")).to_have_attribute("data-state", "connected", timeout=EXPECT_MS)
    call_id = await first.locator("#call-id").text_content()

    # Attended transfer to a2, with a note.
    await first.fill("#call-notes", "Wants the premium plan; account verified")
    await first.fill("#transfer-target", "a2")
    await first.click("#consult")
    await expect(second.locator("#banner")).to_be_visible(timeout=EXPECT_MS)
    await expect(second.locator("#customer-name")).to_have_text("José Müller")
    await expect(second.locator("#transfer-note")).to_contain_text("Wants the premium plan; account verified")
    await expect(second.locator("dd[data-key=Account]")).to_have_text("12345")
    await screenshot(second, "agent_desktop_2_transfer_pop")
    await expect(first.locator("#complete")).to_be_enabled(timeout=EXPECT_MS)  # a2 answered the consultation
    await first.click("#complete")
    await expect(second.locator("#call")).to_have_attribute("data-state", "connected", timeout=EXPECT_MS)
    await expect(first.locator("#wrapup")).to_be_visible(timeout=EXPECT_MS)

    # a1 wraps up; then tries to hang up the call it no longer has.
    await first.select_option("#disposition", "upgrade")
    await first.fill("#wrapup-notes", "Wants the premium plan; account verified")
    await screenshot(first, "agent_desktop_3_wrap_up")
    await first.click("#end-wrapup")
    await expect(first.locator("#wrapup")).to_be_hidden(timeout=EXPECT_MS)
    refused = await first.evaluate("id => window.desk.send('hangup', {call_id: id})", call_id)
    assert refused["ok"] is False and refused["code"] == "not_your_call"

    # A network blip on a2's desktop: it reconnects and shows the call still in progress.
    desk = center.desks.desk_of("a2")
    await desk.sockets[0].close()
    await expect(second.locator("body")).to_have_attribute("data-connection", "closed", timeout=EXPECT_MS)
    await expect(second.locator("body")).to_have_attribute("data-connection", "open", timeout=EXPECT_MS)
    await expect(second.locator("#call")).to_have_attribute("data-state", "connected")
    await expect(second.locator("#customer-name")).to_have_text("José Müller")
    await screenshot(second, "agent_desktop_4_after_reconnect")

    await second.click("#hangup")
    await expect(second.locator("#wrapup")).to_be_visible(timeout=EXPECT_MS)
    await second.select_option("#disposition", "resolved")
    await second.fill("#wrapup-notes", "Premium plan activated")
    await second.click("#end-wrapup")
    await expect(second.locator("#wrapup")).to_be_hidden(timeout=EXPECT_MS)
    await expect(second.locator("#state")).to_have_attribute("data-state", "available", timeout=EXPECT_MS)

    for page in (first, second):  # one pop per desk, the hang-up none
        assert await page.evaluate("window.desk.view.offers") == [call_id]

    row = await center.interaction(call_id.partition(":")[2], lambda r: r["disposition_code"] == "resolved"
                                   and r["wrapup_seconds"] and "a2:" in (r["disposition_notes"] or ""))
    assert row["agents"] == ["a1", "a2"] and row["queue"] == "billing" and row["ani"] == CALLER
    assert row["disposition_notes"] == ("a1: Wants the premium plan; account verified\n"
                                        "a2: Premium plan activated")
    assert row["hold_seconds"] > 0 and row["wrapup_seconds"] > 0
    assert '"upgrade"' in row["data"] and row["ivr_path"][-1] == "billing_menu:to_billing"
    assert not errors, errors


async def test_hold_a_cancelled_consultation_a_blind_transfer_and_click_to_dial(open_center, browser, calls, phones):
    customer_phone = phones()
    center = await open_center(500, flow="to_billing_queue.toml",
                               outbound_interface=customer_phone.dial_string("{number}"))
    await _hold_consult_cancel_blind_transfer_then_dial(center, browser, calls, customer_phone)


async def _hold_consult_cancel_blind_transfer_then_dial(center, browser, calls, customer_phone):
    errors: list = []
    first = await desktop(browser, center, "a1", errors)
    second = await desktop(browser, center, "a2", errors)
    calls("José Müller", CALLER, hold_ms=180_000)
    call = first.locator("#call")
    await expect(call).to_have_attribute("data-state", "connected", timeout=60_000)

    await first.click("#hold")
    await expect(call).to_have_attribute("data-state", "held", timeout=EXPECT_MS)
    await first.click("#unhold")
    await expect(call).to_have_attribute("data-state", "connected", timeout=EXPECT_MS)

    await first.fill("#transfer-target", "a2")
    await first.click("#consult")
    await expect(first.locator("#complete")).to_be_enabled(timeout=EXPECT_MS)
    await first.click("#cancel")
    await expect(call).to_have_attribute("data-state", "connected", timeout=EXPECT_MS)
    await expect(second.locator("#call")).to_be_hidden(timeout=EXPECT_MS)
    await expect(second.locator("#wrapup")).to_be_hidden()  # no wrap-up: it never had the customer
    await expect(second.locator("#state")).to_have_attribute("data-state", "available", timeout=EXPECT_MS)

    await first.select_option("#transfer-kind", "agent")
    await first.click("#transfer")
    await expect(second.locator("#call")).to_have_attribute("data-state", "connected", timeout=EXPECT_MS)
    await expect(first.locator("#wrapup")).to_be_visible(timeout=EXPECT_MS)
    await second.click("#hangup")
    for page in (first, second):
        await expect(page.locator("#wrapup")).to_be_visible(timeout=EXPECT_MS)
        await page.select_option("#disposition", "resolved")
        await page.click("#end-wrapup")
        await expect(page.locator("#wrapup")).to_be_hidden(timeout=EXPECT_MS)

    # Click-to-dial: a1's phone rings and answers, then the customer's.
    await expect(first.locator("#state")).to_have_attribute("data-state", "available", timeout=EXPECT_MS)
    await first.fill("#dial-number", "2125550199")
    await first.click("#dial")
    await expect(call).to_have_attribute("data-state", "connected", timeout=EXPECT_MS)
    await expect(first.locator("#state")).to_contain_text("outbound")
    outbound_id = await first.locator("#call-id").text_content()
    await until(lambda: customer_phone.answered() == 1)
    await screenshot(first, "agent_desktop_5_click_to_dial")
    await first.click("#hangup")
    await expect(first.locator("#wrapup")).to_be_visible(timeout=EXPECT_MS)
    await first.select_option("#disposition", "upgrade")
    await first.click("#end-wrapup")
    await expect(first.locator("#state")).to_have_attribute("data-state", "available", timeout=EXPECT_MS)
    row = await center.interaction(outbound_id.partition(":")[2], lambda r: r["disposition_code"] == "upgrade")
    assert row["direction"] == "out" and row["agents"] == ["a1"] and row["outcome"] == "completed"
    assert row["dnis"] == "2125550199" and row["phone_e164"] == "+12125550199"
    assert not errors, errors


async def test_a_blind_transfer_nobody_answers_puts_the_caller_back_in_the_queue(open_center, browser, calls):
    center = await open_center(500, a2_plan=PhonePlan(busy=True), flow="to_billing_queue.toml")
    errors: list = []
    first = await desktop(browser, center, "a1", errors)
    second = await desktop(browser, center, "a2", errors)
    caller = calls("José Müller", CALLER, hold_ms=180_000)
    call = first.locator("#call")
    await expect(call).to_have_attribute("data-state", "connected", timeout=60_000)
    call_id = await first.locator("#call-id").text_content()

    await first.select_option("#transfer-kind", "agent")
    await first.fill("#transfer-target", "a2")
    await first.click("#transfer")  # a2's phone answers 486 Busy Here
    await expect(first.locator("#wrapup")).to_be_visible(timeout=EXPECT_MS)
    await first.select_option("#disposition", "escalated")
    await first.click("#end-wrapup")
    await expect(call).to_be_hidden(timeout=EXPECT_MS)
    # The caller waited in billing again, and comes back to the one agent who can answer.
    await expect(call).to_have_attribute("data-state", "connected", timeout=60_000)
    assert await first.evaluate("window.desk.view.offers") == [call_id, call_id]
    assert await first.locator("#call-id").text_content() == call_id
    await expect(first.locator("#customer-name")).to_have_text("José Müller")
    assert caller.poll() is None  # the caller was never cut off
    await first.click("#hangup")
    await expect(first.locator("#wrapup")).to_be_visible(timeout=EXPECT_MS)
    await first.select_option("#disposition", "resolved")
    await first.click("#end-wrapup")

    row = await center.interaction(call_id.partition(":")[2], lambda r: r["outcome"] is not None)
    assert row["outcome"] == "completed" and row["agents"] == ["a1", "a1"]
    assert "a2" in json.loads(row["data"])["acd"]["rung"]
    assert not errors, errors
    await second.close()
