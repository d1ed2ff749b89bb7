"""`cti crm import FILE.csv`: customers from a spreadsheet, good rows kept, bad rows reported.

The file is UTF-8 (an Excel BOM is fine), comma-separated, with a header row naming columns
of the customer API: ``name`` (required), ``tier``, ``value_score``, ``vip``, ``churn_risk``,
``notes``, ``phones`` and ``account_numbers`` (several separated by ";"). Empty cells are
absent values. Each row is validated exactly as a POST /api/crm/customers body would be.
A row whose account number already belongs to a customer is refused, so importing the same
file twice reports duplicates instead of creating them.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import structlog

from crm_bridge.customers import CUSTOMER_FIELDS, CustomerRepository
from crm_bridge.database import Database
from crm_bridge.fields import ValidationError
from crm_bridge.logger import is_outage
from crm_bridge.phone import PhoneNormalizer

log = structlog.get_logger(__name__)

# Rows per transaction: each row has its own savepoint, so a bad one costs only itself.
BATCH_ROWS = 500


@dataclass(frozen=True)
class RowError:
    line: int
    reason: str


@dataclass
class ImportReport:
    imported: int = 0
    errors: list[RowError] = field(default_factory=list)

    def lines(self) -> list[str]:
        """For the command's output: a summary, then one line per refused row."""
        summary = f"imported {self.imported} customers, refused {len(self.errors)} rows"
        return [summary] + [f"line {error.line}: {error.reason}" for error in self.errors]


async def run_import(database: Database, path: Path, *, default_country: str) -> ImportReport:
    """Import ``path``; national phone numbers are read as numbers of ``default_country``."""
    customers = CustomerRepository(database.pool, PhoneNormalizer(default_country))
    report = ImportReport()
    with open(path, newline="", encoding="utf-8-sig") as file:
        rows = _rows(csv.DictReader(file), customers, report)
        batch = []
        for line, row in rows:
            batch.append((line, row))
            if len(batch) == BATCH_ROWS:
                await _import_batch(customers, database.pool, batch, report)
                batch = []
        await _import_batch(customers, database.pool, batch, report)
    report.errors.sort(key=lambda error: error.line)  # parse errors come before the database's
    log.info("crm.import_done", path=str(path), imported=report.imported, refused=len(report.errors))
    return report


def _rows(reader: csv.DictReader, customers: CustomerRepository, report: ImportReport):
    """(first line number, parsed fields) of each valid row; invalid ones go to the report."""
    unknown = [name for name in reader.fieldnames or [] if name not in CUSTOMER_FIELDS]
    if not reader.fieldnames or unknown:
        report.errors.append(RowError(1, f"header: unknown columns {unknown}" if unknown else "header: empty file"))
        return
    first_line = reader.line_num + 1
    for row in reader:
        cells = {name: value for name, value in row.items() if name is not None and value not in ("", None)}
        try:
            if None in row:
                raise ValidationError({"row": f"{len(row[None])} cells more than the header has"})
            yield first_line, customers.parse(cells, from_text=True)
        except ValidationError as error:
            report.errors.append(RowError(first_line, str(error)))
        first_line = reader.line_num + 1


async def _import_batch(customers: CustomerRepository, pool: asyncpg.Pool,
                        batch: list[tuple[int, dict]], report: ImportReport) -> None:
    async with pool.acquire() as connection, connection.transaction():
        for line, fields in batch:
            try:
                await customers.create(fields, connection)
                report.imported += 1
            except ValidationError as error:
                report.errors.append(RowError(line, str(error)))
            except asyncpg.PostgresError as error:
                if is_outage(error):
                    raise
                report.errors.append(RowError(line, f"refused by the database: {error}"))
