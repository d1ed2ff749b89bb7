"""The supervisor's live wallboard (/supervisor/) in a real browser (Debian's chromium, headless)
against the real app, a real AcdService and the ACD store in PostgreSQL.

No Asterisk in these tests: they submit the ACD's events (CallArrived, OfferAccepted,
AgentNotReady...) to the AcdService directly, as the FastAGI sessions, the AMI and agent desktops
do in the daemon. What is checked is what the page shows and what its buttons change.
"""

from __future__ import annotations

import dataclasses

import pytest

from acd import AgentNotReady, AgentReady, CallArrived, Offer, OfferAccepted
from cti.http import supervisor_api
from tests import browser
from tests.integration.crm_support import database_fixture  # noqa: F401
from tests.integration.supervision_support import log_in, ready, supervised_app

# Hang guards, not timing assertions: a frame is due within a second of its event.
LIMIT_MS = 10_000


@pytest.fixture
async def served(database):
    """The app on a free loopback port, every agent logged in (not ready)."""
    # No periodic refresh while a test runs: waits must grow without any frame.
    supervised = await supervised_app(database.pool, refresh_seconds=3600)
    log_in(supervised.acd)
    supervised.offers = []
    supervised.acd.listen(lambda decision: isinstance(decision, Offer) and supervised.offers.append(decision))
    async with browser.served(supervised.app) as base:
        supervised.base = base
        yield supervised


@pytest.fixture
async def page(served):
    errors = []
    async with browser.chromium() as chromium:
        page = await browser.open_page(chromium, errors, viewport={"width": 1500, "height": 1000})
        page.set_default_timeout(LIMIT_MS)
        await page.add_init_script(f"localStorage.setItem('cti.token', {served.tokens['supervisor']!r})")
        response = await page.goto(f"{served.base}/supervisor/")
        assert response.status == 200  # the page itself needs no token
        await page.wait_for_selector("#connection.live")
        await page.wait_for_selector("#agents tr[data-agent='1003']")
        yield page
    assert not errors, errors  # a script error the assertions did not notice


def agent_cell(page, agent_id: str, key: str):
    return page.locator(f"#agents tr[data-agent='{agent_id}'] td[data-key={key}]")


async def seconds_shown(cell) -> int:
    minutes, seconds = (await cell.text_content()).split(":")[-2:]
    return int(minutes) * 60 + int(seconds)


async def test_a_waiting_call_appears_its_wait_grows_and_it_leaves_when_answered(served, page):
    served.acd.submit(CallArrived("c1", "support", priority=4))
    row = page.locator("#calls tr[data-call='c1']")
    await row.wait_for()
    assert await row.locator("td[data-key=priority]").text_content() == "4"
    assert await page.locator("#queues tr[data-queue=support] td[data-key=waiting]").text_content() == "1"
    wait = row.locator("td[data-key=wait]")
    first = await seconds_shown(wait)
    frames_before = served.app[supervisor_api.FANOUT].frames_sent
    await page.wait_for_function("""(first) => {
        const [minutes, seconds] = document.querySelector("#calls tr[data-call='c1'] td[data-key=wait]")
            .textContent.split(":").map(Number);
        return minutes * 60 + seconds >= first + 2;
    }""", arg=first)
    # It grew in the page, from the call's `since`, without a frame per second.
    assert served.app[supervisor_api.FANOUT].frames_sent == frames_before
    await browser.screenshot(page, "supervisor_waiting_call")

    ready(served.acd, "1001")  # offered at once: it rings Alice
    await page.wait_for_selector("#calls tr[data-call='c1'] td[data-key=state]:text-is('offered')")
    await page.wait_for_selector("#agents tr[data-agent='1001'] td[data-key=state]:text-is('reserved')")
    served.acd.submit(OfferAccepted("c1", "1001"))
    await row.wait_for(state="detached")
    await page.wait_for_selector("#no-calls:not([hidden])")
    assert await agent_cell(page, "1001", "state").text_content() == "on_call"
    assert await agent_cell(page, "1001", "call").text_content() == "c1"
    support = page.locator("#queues tr[data-queue=support]")
    assert await support.locator("td[data-key=answered_today]").text_content() == "1"
    assert await support.locator("span[data-state=on_call]").text_content() == "1 on call"
    await browser.screenshot(page, "supervisor_call_answered")


async def test_an_agents_state_change_shows_up_and_the_page_reconnects(served, page):
    served.acd.submit(AgentReady("1002"))
    await page.wait_for_selector("#agents tr[data-agent='1002'] td[data-key=state]:text-is('available')")
    served.acd.submit(AgentNotReady("1002", "lunch"))
    await page.wait_for_selector("#agents tr[data-agent='1002'] td[data-key=state]:text-is('not_ready')")
    assert await agent_cell(page, "1002", "reason").text_content() == "lunch"

    for socket in list(served.app[supervisor_api.SOCKETS]):  # the server drops the page's socket
        await socket.close()
    await page.wait_for_selector("#connection.reconnecting")
    await page.wait_for_selector("#connection.live")
    served.acd.submit(AgentReady("1002"))
    await page.wait_for_selector("#agents tr[data-agent='1002'] td[data-key=state]:text-is('available')")

    await page.click("#agents tr[data-agent='1002'] button[data-action=not-ready]")  # forced from the page
    await page.wait_for_selector("#agents tr[data-agent='1002'] td[data-key=reason]:text-is('supervisor')")
    assert served.acd.engine.agent_state("1002") == "not_ready"
    await browser.screenshot(page, "supervisor_agent_states")


async def test_a_skill_change_made_on_the_page_changes_the_next_routing_decision(served, page):
    ready(served.acd, "1001", "1002")  # Alice has been idle longest: the next support call is hers
    await page.click("#agents tr[data-agent='1001'] button[data-action=skills]")
    assert await page.input_value("#skills-input") == "support=80"
    await page.fill("#skills-input", "sales=40, billing=70")
    await browser.screenshot(page, "supervisor_skills_dialog")
    await page.click("#skills-save")
    await page.wait_for_selector("#status:text-is('skills of 1001: done')")
    await page.wait_for_selector("#agents tr[data-agent='1001'] td[data-key=skills]:text-is('sales=40, billing=70')")

    served.acd.submit(CallArrived("c1", "support"))
    assert [(offer.call_id, offer.agent_id) for offer in served.offers] == [("c1", "1002")]
    await page.wait_for_selector("#agents tr[data-agent='1002'] td[data-key=call]:text-is('c1')")
    assert await agent_cell(page, "1001", "state").text_content() == "available"
    await browser.screenshot(page, "supervisor_skills_changed")


async def test_moving_a_call_raising_its_priority_and_thresholds(served, page):
    served.acd.submit(CallArrived("c1", "vip"))
    served.acd.submit(CallArrived("c2", "vip"))
    served.acd.submit(CallArrived("c3", "support"))
    await page.wait_for_selector("#calls tr[data-call='c3']")
    # The vip queue's threshold is 1 s: its waits turn red as they pass it.
    await page.wait_for_selector("#calls tr[data-call='c1'] td[data-key=wait].over")
    await page.wait_for_selector("#queues tr[data-queue=vip] td[data-key=longest_wait].over")
    assert not await page.locator("#calls tr[data-call='c3'] td[data-key=wait].over").count()

    c2 = page.locator("#calls tr[data-call='c2']")
    await c2.locator("input").fill("9")
    await c2.locator("button[data-action=priority]").click()
    await page.wait_for_selector("#calls tr[data-call='c2'] td[data-key=position]:text-is('1')")
    assert await page.locator("#calls tr[data-call='c2'] td[data-key=priority]").text_content() == "9"

    c3 = page.locator("#calls tr[data-call='c3']")
    await c3.locator("select").select_option("sales")
    await c3.locator("button[data-action=move]").click()
    await page.wait_for_selector("#calls tr[data-call='c3'] td[data-key=queue]:text-is('sales')")
    assert served.acd.engine.waiting_calls("sales") == ["c3"]

    ready(served.acd, "1003")  # vip's first call now is c2; answered after 1 s: below the SL target
    served.acd.submit(OfferAccepted("c2", "1003"))
    await page.wait_for_selector("#queues tr[data-queue=vip] td[data-key=sl_recent].bad")
    assert await page.text_content("#queues tr[data-queue=vip] td[data-key=sl_recent]") == "0.0 %"
    await browser.screenshot(page, "supervisor_thresholds")


async def test_a_queue_closed_by_its_opening_hours_is_marked_closed(served, page):
    support = page.locator("#queues tr[data-queue=support] td[data-key=queue]")
    assert await support.locator(".badge.closed").count() == 0
    closed = dataclasses.replace(served.acd.definitions.queue("support"), calendar={"timezone": "UTC"})
    served.acd.update_queue(closed)  # no opening hours at all: closed
    await support.locator(".badge.closed").wait_for()
    served.acd.update_queue(dataclasses.replace(closed, calendar=None))
    await support.locator(".badge.closed").wait_for(state="detached")