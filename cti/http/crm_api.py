"""REST API for CRM applications: customers, interaction queries, CSV export, OpenAPI document.

Each route is declared once in ROUTES with its roles, parameters, body and answers.
``add_routes`` registers them, each behind ``@requires`` with the declared roles, and
/api/openapi.json is built from the same list, so the document cannot drift from what is served.
Bad input answers 422 ``{"errors": {"<field>": "<message>"}}``.
"""

from __future__ import annotations

import csv
import functools
import io
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from aiohttp import web

from cti.http.auth import requires
from crm_bridge.external import ExternalCrm, screen_pop
from crm_bridge.customers import CUSTOMER_FIELDS, CUSTOMER_READ_ONLY, CUSTOMER_REQUIRED, CustomerRepository
from crm_bridge.fields import Context, Field, Phone, Text, ValidationError, object_schema, parse_fields
from crm_bridge.interactions import (
    EVENT_COLUMNS,
    INTERACTION_COLUMNS,
    INTERACTION_FILTERS,
    JSON_COLUMNS,
    PAGE_FIELDS,
    InteractionRepository,
)
from crm_bridge.phone import PhoneNormalizer

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

READERS = ("crm", "supervisor")
WRITERS = ("crm",)


@dataclass(frozen=True)
class CrmStore:
    """What the CRM routes need; the composition root builds it once the pool is open."""

    customers: CustomerRepository
    interactions: InteractionRepository
    # The external CRM whose fields merge into the screen-pop; None: our own record only.
    external: ExternalCrm | None = None

    @classmethod
    def from_pool(cls, pool, phones: PhoneNormalizer, external: ExternalCrm | None = None) -> CrmStore:
        return cls(CustomerRepository(pool, phones), InteractionRepository(pool, phones), external)


CRM_STORE = web.AppKey("crm_store", CrmStore)


def _store(request: web.Request) -> CrmStore:
    return request.app[CRM_STORE]


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _embedded(row: dict[str, Any], json_columns: frozenset[str]) -> dict[str, Any]:
    """jsonb columns arrive as JSON text: embed them as they are instead of parsing and re-encoding."""
    return {name: orjson.Fragment(value) if name in json_columns and value is not None else value
            for name, value in row.items()}


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise ValidationError({"body": "is not valid JSON"}) from None
    if not isinstance(body, dict):
        raise ValidationError({"body": "must be a JSON object"})
    return body


def _path_id(request: web.Request) -> int:
    return int(request.match_info["id"])


def _not_found(what: str) -> web.HTTPNotFound:
    return web.HTTPNotFound(text=orjson.dumps({"error": f"{what} not found"}).decode(),
                            content_type="application/json")


# Handlers ---------------------------------------------------------------------------------

async def openapi(request: web.Request) -> web.Response:
    return _json(openapi_document(request.app[API_ROUTES]))


async def create_customer(request: web.Request) -> web.Response:
    customers = _store(request).customers
    customer_id = await customers.create(customers.parse(await _json_object(request)))
    response = _json(await customers.get(customer_id), status=201)
    response.headers["Location"] = f"/api/crm/customers/{customer_id}"
    return response


async def get_customer(request: web.Request) -> web.Response:
    customer = await _store(request).customers.get(_path_id(request))
    if customer is None:
        raise _not_found("customer")
    return _json(customer)


async def update_customer(request: web.Request) -> web.Response:
    customers = _store(request).customers
    fields = customers.parse(await _json_object(request), partial=True)
    if not await customers.update(_path_id(request), fields):
        raise _not_found("customer")
    return _json(await customers.get(_path_id(request)))


async def delete_customer(request: web.Request) -> web.Response:
    if not await _store(request).customers.delete(_path_id(request)):
        raise _not_found("customer")
    return web.Response(status=204)


_LOOKUP_FIELDS = {"phone": Phone(description="Any notation; normalised to E.164"),
                  "account": Text(64, description="An account number")}
_POP_FIELDS = {"phone": _LOOKUP_FIELDS["phone"]}


async def lookup_customers(request: web.Request) -> web.Response:
    customers = _store(request).customers
    keys = parse_fields(_LOOKUP_FIELDS, request.query, Context(customers.phones, from_text=True))
    if len(keys) != 1:
        raise ValidationError({"phone": "give either phone or account"})
    if "phone" in keys:
        found = await customers.find_by_phone(keys["phone"])
    else:
        found = [customer for customer in [await customers.find_by_account(keys["account"])] if customer]
    return _json({"items": found})


async def get_screen_pop(request: web.Request) -> web.Response:
    """Our customer record for a number, merged with the external CRM's fields. A slow or
    failing external CRM never holds it back: external_status then says what happened."""
    store = _store(request)
    keys = parse_fields(_POP_FIELDS, request.query, Context(store.customers.phones, from_text=True))
    if "phone" not in keys:
        raise ValidationError({"phone": "is required"})
    return _json(await screen_pop(store.customers, store.external, store.customers.phones, keys["phone"]))


async def list_interactions(request: web.Request) -> web.Response:
    interactions = _store(request).interactions
    page = await interactions.page(interactions.parse_query(request.query))
    return _json({"items": [_embedded(item, JSON_COLUMNS) for item in page.items],
                  "next_cursor": page.next_cursor})


async def get_interaction(request: web.Request) -> web.Response:
    interaction = await _store(request).interactions.get(_path_id(request))
    if interaction is None:
        raise _not_found("interaction")
    interaction["timeline"] = [_embedded(event, frozenset({"detail"})) for event in interaction["timeline"]]
    return _json(_embedded(interaction, JSON_COLUMNS))


async def export_interactions(request: web.Request) -> web.StreamResponse:
    interactions = _store(request).interactions
    query = interactions.parse_query(request.query, paged=False)  # 422 before any byte is sent
    response = web.StreamResponse(headers={
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": 'attachment; filename="interactions.csv"'})
    await response.prepare(request)
    await response.write(_csv_lines([list(INTERACTION_COLUMNS)]))
    async for chunk in interactions.export(query):
        await response.write(_csv_lines([[_csv_cell(row[name]) for name in INTERACTION_COLUMNS] for row in chunk]))
    await response.write_eof()
    return response


def _csv_lines(rows: list[list[Any]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode()


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        return ";".join(value)
    return value


# Declarations -----------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)  # identity-hashed: a tuple of routes keys the OpenAPI cache
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    roles: tuple[str, ...] = ()  # empty: open to anyone
    query: Mapping[str, Field] = field(default_factory=dict)
    body: str | None = None  # schema name of the JSON body
    # status -> (description, schema name or None); 401, 403 and 422 are added from the above.
    answers: Mapping[int, tuple[str, str | None]] = field(default_factory=dict)
    content_type: str = "application/json"
    # Schemas this route's body and answers name, beyond the CRM's (other APIs bring their own).
    schemas: Mapping[str, dict] = field(default_factory=dict)


_CUSTOMER_PATH = r"/api/crm/customers/{id:\d{1,18}}"
_INTERACTION_PATH = r"/api/crm/interactions/{id:\d{1,18}}"

ROUTES = (
    Route("GET", "/api/openapi.json", openapi, "This document (OpenAPI 3.1)",
          answers={200: ("The OpenAPI document", None)}),
    Route("POST", "/api/crm/customers", create_customer, "Create a customer", WRITERS,
          body="CustomerCreate", answers={201: ("The customer created", "Customer")}),
    Route("GET", "/api/crm/customers", lookup_customers, "Find customers by phone or by account number",
          READERS, query=_LOOKUP_FIELDS, answers={200: ("Matching customers", "CustomerList")}),
    Route("GET", _CUSTOMER_PATH, get_customer, "Read a customer", READERS,
          answers={200: ("The customer", "Customer"), 404: ("No such customer", "Error")}),
    Route("PATCH", _CUSTOMER_PATH, update_customer,
          "Change a customer's fields; phones and account_numbers are replaced as a whole", WRITERS,
          body="CustomerUpdate", answers={200: ("The customer", "Customer"), 404: ("No such customer", "Error")}),
    Route("DELETE", _CUSTOMER_PATH, delete_customer,
          "Delete a customer; their interactions stay, unlinked", WRITERS,
          answers={204: ("Deleted", None), 404: ("No such customer", "Error")}),
    Route("GET", "/api/crm/pop", get_screen_pop,
          "The screen-pop for a caller: our customer(s) by phone, merged with the external CRM's fields",
          READERS, query=_POP_FIELDS,
          answers={200: ("customer, customers, external (fields), external_status "
                         "(ok, not_found, timeout, unavailable, not_asked)", None)}),
    Route("GET", "/api/crm/interactions", list_interactions,
          "List interactions, newest first by default, a page at a time", READERS,
          query=INTERACTION_FILTERS | PAGE_FIELDS, answers={200: ("A page of interactions", "InteractionPage")}),
    Route("GET", "/api/crm/interactions/export.csv", export_interactions,
          "Every matching interaction as CSV, streamed", READERS,
          query=INTERACTION_FILTERS | {"sort": PAGE_FIELDS["sort"]},
          answers={200: ("CSV with a header row; lists joined by ';', JSON as text", None)},
          content_type="text/csv"),
    Route("GET", _INTERACTION_PATH, get_interaction, "One interaction with its timeline", READERS,
          answers={200: ("The interaction", "InteractionWithTimeline"), 404: ("No such interaction", "Error")}),
)


API_ROUTES = web.AppKey("api_routes", tuple)


def add_routes(app: web.Application, routes: tuple[Route, ...] = ROUTES) -> None:
    """Register ``routes`` (by default the CRM's, which need ``app[CRM_STORE]``) and list them in
    the app's OpenAPI document. Other features declare their own ROUTES and register them here."""
    app[API_ROUTES] = app.get(API_ROUTES, ()) + routes
    for route in routes:
        handler = _answering_422(route.handler)
        app.router.add_route(route.method, route.path, requires(*route.roles)(handler) if route.roles else handler)


def _answering_422(handler: Handler) -> Handler:
    @functools.wraps(handler)
    async def answering(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ValidationError as error:
            return _json({"errors": error.errors}, status=422)

    return answering


# The OpenAPI document ---------------------------------------------------------------------

def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _schemas() -> dict[str, dict]:
    customer = object_schema(CUSTOMER_FIELDS)
    customer["properties"] = CUSTOMER_READ_ONLY | customer["properties"]
    customer["required"] = sorted(customer["properties"])
    interaction = {"type": "object", "properties": INTERACTION_COLUMNS, "required": list(INTERACTION_COLUMNS)}
    return {
        "CustomerCreate": object_schema(CUSTOMER_FIELDS, CUSTOMER_REQUIRED),
        "CustomerUpdate": object_schema(CUSTOMER_FIELDS),
        "Customer": customer,
        "CustomerList": {"type": "object", "properties": {"items": {"type": "array", "items": _ref("Customer")}}},
        "Interaction": interaction,
        "InteractionEvent": {"type": "object", "properties": EVENT_COLUMNS, "required": list(EVENT_COLUMNS)},
        "InteractionWithTimeline": {"allOf": [_ref("Interaction"), {
            "type": "object", "properties": {"timeline": {"type": "array", "items": _ref("InteractionEvent")}}}]},
        "InteractionPage": {"type": "object", "properties": {
            "items": {"type": "array", "items": _ref("Interaction")},
            "next_cursor": {"type": ["string", "null"], "description": "Pass as cursor for the next page; "
                            "null on the last page"}}},
        "Error": {"type": "object", "properties": {"error": {"type": "string"}}},
        "ValidationErrors": {"type": "object", "properties": {"errors": {
            "type": "object", "additionalProperties": {"type": "string"},
            "description": "One message per field (query parameter or body property)"}}},
    }


def _operation(route: Route) -> dict:
    answers = dict(route.answers)
    if route.roles:
        answers[401] = ("Missing or invalid bearer token", "Error")
        answers[403] = ("The token's role may not use this endpoint", "Error")
    if route.body or route.query:
        answers[422] = ("Bad input, per field", "ValidationErrors")
    operation = {
        "operationId": route.handler.__name__,
        "summary": route.summary,
        "parameters": _path_parameters(route.path) + [
            {"name": name, "in": "query", "required": False, "schema": spec.schema()}
            for name, spec in route.query.items()],
        "responses": {str(status): _answer(description, schema, status, route.content_type)
                      for status, (description, schema) in sorted(answers.items())},
    }
    if route.roles:
        operation["security"] = [{"bearer": []}]
        operation["x-roles"] = list(route.roles)
    if route.body:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(route.body)}}}
    return operation


def _answer(description: str, schema: str | None, status: int, content_type: str) -> dict:
    answer = {"description": description}
    if schema:
        answer["content"] = {"application/json": {"schema": _ref(schema)}}
    elif 200 <= status < 300 and status != 204:
        answer["content"] = {content_type: {}}
    return answer


_PATH_PARAMETER = re.compile(r"\{(\w+)(?::((?:[^{}]|\{[^{}]*\})*))?\}")


def _path_parameters(path: str) -> list[dict]:
    """Numeric ids are declared with a digits pattern ({id:\\d{1,18}}); other parameters are names."""
    return [{"name": name, "in": "path", "required": True,
             "schema": {"type": "integer", "minimum": 1} if pattern.startswith(r"\d") else {"type": "string"}}
            for name, pattern in _PATH_PARAMETER.findall(path)]


@functools.cache
def openapi_document(routes: tuple[Route, ...] = ROUTES) -> dict:
    paths: dict[str, dict] = {}
    for route in routes:
        # aiohttp's "{id:<regex>}" (one level of braces inside) is OpenAPI's "{id}".
        path = re.sub(r"\{(\w+):(?:[^{}]|\{[^{}]*\})*\}", r"{\1}", route.path)
        paths.setdefault(path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {"title": "cti-server API", "version": "1",
                 "description": "Customers, the interaction log, reports and the ACD. See docs/API.md."},
        "paths": paths,
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
                       "schemas": _schemas() | {name: schema for route in routes
                                                for name, schema in route.schemas.items()}},
    }
