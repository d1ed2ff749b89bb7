"""Who is calling an endpoint: a named principal with one role (agent, supervisor, crm, operator)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    name: str
    role: str
