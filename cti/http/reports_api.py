"""REST endpoints of the historical reports (docs/KPIS.md): each report as JSON and as CSV.

Routes are declared with crm_api's Route, so they carry their roles and parameters the same way;
bad parameters answer 422 ``{"errors": {"<parameter>": "<message>"}}`` like the CRM API.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import fields

from aiohttp import web

from cti.http import crm_api
from cti.http.crm_api import Route, _csv_cell, _csv_lines, _json
from crm_bridge.reports import (AGENT_PARAMETERS, QUEUE_PARAMETERS, AgentRow, QueueRow, ReportField, ReportQuery,
                                Reports, parse_query)

REPORTS = web.AppKey("reports", Reports)
# CRM applications already read every interaction these figures are made of.
READERS = ("supervisor", "crm")

Run = Callable[[Reports, ReportQuery], Awaitable[list]]


async def _run(request: web.Request, spec: Mapping[str, ReportField], run: Run) -> tuple[ReportQuery, list]:
    query = parse_query(request.query, spec)
    return query, await run(request.app[REPORTS], query)


def _json_report(query: ReportQuery, rows: list) -> web.Response:
    return _json({"query": query.parameters(), "rows": rows})


def _csv_report(name: str, row_type: type, query: ReportQuery, rows: list) -> web.Response:
    columns = [column.name for column in fields(row_type)]
    body = _csv_lines([columns] + [[_csv_cell(getattr(row, column)) for column in columns] for row in rows])
    filename = f"{name}-{query.first_day}-{query.last_day}-{query.interval}.csv"
    return web.Response(body=body, headers={"Content-Type": "text/csv; charset=utf-8",
                                            "Content-Disposition": f'attachment; filename="{filename}"'})


async def queue_report(request: web.Request) -> web.Response:
    return _json_report(*await _run(request, QUEUE_PARAMETERS, Reports.queue_report))


async def queue_report_csv(request: web.Request) -> web.Response:
    return _csv_report("queues", QueueRow, *await _run(request, QUEUE_PARAMETERS, Reports.queue_report))


async def agent_report(request: web.Request) -> web.Response:
    return _json_report(*await _run(request, AGENT_PARAMETERS, Reports.agent_report))


async def agent_report_csv(request: web.Request) -> web.Response:
    return _csv_report("agents", AgentRow, *await _run(request, AGENT_PARAMETERS, Reports.agent_report))


_JSON_ANSWER = {200: ("query (the parameters used, with the window's start and end) and rows, one per "
                      "bucket and queue or agent with a call; ratios and averages null when nothing to divide", None)}
_CSV_ANSWER = {200: ("The rows as CSV with a header row; empty cells for null", None)}

ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/reports/queues", queue_report,
          "Per bucket and queue: offered, answered, abandoned, service levels, ASA, AHT... (docs/KPIS.md)",
          READERS, query=QUEUE_PARAMETERS, answers=_JSON_ANSWER),
    Route("GET", "/api/reports/queues.csv", queue_report_csv, "The queue report as CSV",
          READERS, query=QUEUE_PARAMETERS, answers=_CSV_ANSWER, content_type="text/csv"),
    Route("GET", "/api/reports/agents", agent_report,
          "Per bucket and agent: answered, AHT, transfers, survey scores (docs/KPIS.md)",
          READERS, query=AGENT_PARAMETERS, answers=_JSON_ANSWER),
    Route("GET", "/api/reports/agents.csv", agent_report_csv, "The agent report as CSV",
          READERS, query=AGENT_PARAMETERS, answers=_CSV_ANSWER, content_type="text/csv"),
)


def add_routes(app: web.Application) -> None:
    """Register ROUTES; ``app[REPORTS]`` must be set before the first request."""
    crm_api.add_routes(app, ROUTES)
