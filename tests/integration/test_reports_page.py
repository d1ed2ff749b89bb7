"""The supervisor's reports page in a real browser (Debian's chromium, headless) against the real app."""

import pytest

from tests import browser
from tests.integration.crm_support import database_fixture  # noqa: F401
from tests.integration.test_reports import SALES_BY_15_MINUTES, seed, start_app


@pytest.fixture
async def served(database):
    """The app on a free loopback port: (base URL, tokens)."""
    await seed(database.pool)
    app, tokens = await start_app(database.pool)
    async with browser.served(app) as base:
        yield base, tokens


@pytest.fixture
async def page(served):
    errors = []
    async with browser.chromium() as chromium:
        page = await browser.open_page(chromium, errors, viewport={"width": 1400, "height": 1000},
                                       accept_downloads=True)
        yield page
    assert not errors, errors  # a script error the assertions above did not notice


def _percent(value):
    return "–" if value is None else f"{value * 100:.1f} %"


def _seconds(value):
    return "–" if value is None else f"{value:.1f}"


def expected_table_row(bucket: str, figures: tuple) -> list[str]:
    """The page's table row for one of test_reports' hand-computed 15-minute rows."""
    (offered, answered, abandoned, short, within, sl_answered, sl_abandons, asa, aht, max_wait, transfers,
     callbacks, survey, surveys) = figures
    return [bucket[:16].replace("T", " "), "sales", *map(str, (offered, answered, abandoned, short, within)),
            _percent(sl_answered), _percent(sl_abandons), _seconds(asa), _seconds(aht), _seconds(max_wait),
            str(transfers), str(callbacks), "–" if survey is None else f"{survey:.2f}", str(surveys)]


async def test_chart_table_and_csv_of_a_day_by_15_minutes(served, page):
    base, tokens = served
    await page.add_init_script(f"localStorage.setItem('cti.token', {tokens['supervisor']!r})")
    response = await page.goto(f"{base}/static/supervisor/reports.html")
    assert response.status == 200  # the page itself needs no token
    assert await page.input_value("#token") == tokens["supervisor"]

    await page.select_option("#report", "queues")
    await page.fill("[name=from]", "2024-05-01")
    await page.select_option("[name=interval]", "15m")
    await page.fill("[name=tz]", "Europe/Berlin")
    await page.fill("[name=queue]", "sales")
    await page.click("button")
    await page.wait_for_selector("#csv:not([hidden])")

    chart = page.locator("figure[data-group=sales]")
    assert await page.locator("figure").count() == 1
    buckets = await chart.locator("g.bucket").evaluate_all("nodes => nodes.map(n => n.dataset.bucket)")
    assert buckets == list(SALES_BY_15_MINUTES)
    # One point per bucket with a service level; 08:45 (nothing answered or abandoned) has none.
    points = await chart.locator("circle[data-series=service_level_with_abandons]").evaluate_all(
        "nodes => nodes.map(n => Number(n.dataset.value))")
    assert points == pytest.approx([1.0, 0.5, 2 / 3, 1.0, 1.0, 0.0])
    assert await chart.locator("circle[data-series=service_level_answered]").count() == 5

    table = await page.locator("#table tbody tr").evaluate_all(
        "rows => rows.map(r => [...r.cells].map(c => c.textContent))")
    assert table == [expected_table_row(bucket, figures) for bucket, figures in SALES_BY_15_MINUTES.items()]
    assert table[1] == ["2024-05-01 08:00", "sales", "5", "3", "2", "1", "2", "66.7 %", "50.0 %", "15.3", "140.0",
                        "40.0", "0", "0", "4.00", "2"]

    async with page.expect_download() as download_info:
        await page.click("#csv")
    download = await download_info.value
    assert download.suggested_filename == "queues-2024-05-01-2024-05-01-15m.csv"
    lines = (await download.path()).read_text().splitlines()
    assert lines[0].startswith("bucket,queue,offered,") and len(lines) == 1 + len(SALES_BY_15_MINUTES)

    await browser.screenshot(page, "reports_page")


async def test_agent_report_and_a_refused_token(served, page):
    base, tokens = served
    await page.goto(f"{base}/static/supervisor/reports.html")
    await page.fill("#token", tokens["supervisor"])
    await page.select_option("#report", "agents")
    assert await page.is_hidden("[name=service_level_seconds]")
    await page.fill("[name=from]", "2024-05-01")
    await page.select_option("[name=interval]", "day")
    await page.fill("[name=tz]", "Europe/Berlin")
    await page.click("button")
    await page.wait_for_selector("#csv:not([hidden])")
    groups = await page.locator("figure").evaluate_all("nodes => nodes.map(n => n.dataset.group)")
    assert groups == ["a1", "a2", "a3"]
    assert await page.locator("#table tbody tr td[data-key=answered]").all_text_contents() == ["4", "4", "5"]

    await page.fill("#token", "nope")
    await page.click("button")
    await page.wait_for_selector("#status.error")
    assert await page.text_content("#status") == "401: missing or invalid bearer token"
    assert await page.locator("figure, #table tr").count() == 0 and await page.is_hidden("#csv")
