"""CRM lookup latency with 1M customers: by caller number (ANI), by account number, by DNIS.

    .venv/bin/python bench/crm_lookup.py [--customers 1000000] [--lookups 20000]

Loads the customers with COPY into the real schema (indexes and all), then runs the lookups one
after another through the repositories the daemon uses (CustomerRepository, DnisDirectory):
ANI in national notation (normalised first), account numbers, DNIS numbers, all picked at
random. Reported: p50/p99 per kind; the last line gives the worst kind's p99.
See bench/bench_pg.py for where PostgreSQL comes from ($CTI_BENCH_DSN or a private cluster).
"""

from __future__ import annotations

import argparse
import random
import time

import uvloop
from bench_pg import percentile, scratch_pool  # first: it puts the repository on sys.path

from cti import logs
from crm_bridge.customers import CustomerRepository
from crm_bridge.dnis import DnisDirectory
from crm_bridge.phone import PhoneNormalizer

PHONES = PhoneNormalizer("DE")
DNIS_NUMBERS = 200
WARMUP = 2000


def landline(n: int) -> str:
    return f"+4930{n:08d}"


def mobile(n: int) -> str:
    return f"+49151{n:08d}"


def account(n: int) -> str:
    return f"A-{n:08d}"


async def load(pool, customers: int) -> None:
    started = time.perf_counter()
    tiers = ("bronze", "silver", "gold", "platinum")
    async with pool.acquire() as connection:
        await connection.copy_records_to_table(
            "customers", columns=["id", "name", "tier", "value_score"],
            records=((n, f"Customer {n}", tiers[n % 4], n % 101) for n in range(1, customers + 1)))
        await connection.execute("SELECT setval(pg_get_serial_sequence('customers', 'id'), $1)", customers)
        # Every customer has a landline; every third one a mobile too.
        await connection.copy_records_to_table(
            "customer_phones", columns=["e164", "customer_id", "position"],
            records=((landline(n), n, 1) for n in range(1, customers + 1)))
        await connection.copy_records_to_table(
            "customer_phones", columns=["e164", "customer_id", "position"],
            records=((mobile(n), n, 2) for n in range(1, customers + 1, 3)))
        await connection.copy_records_to_table(
            "customer_accounts", columns=["account_number", "customer_id"],
            records=((account(n), n) for n in range(1, customers + 1)))
        await connection.copy_records_to_table(
            "dnis", columns=["number", "service"],
            records=((f"+4930900{n:04d}", f"service-{n}") for n in range(DNIS_NUMBERS)))
        await connection.execute("ANALYZE")
    print(f"loaded {customers} customers in {time.perf_counter() - started:.1f} s", flush=True)


async def measure(pool, customers: int, lookups: int) -> dict[str, list[float]]:
    repository = CustomerRepository(pool, PHONES)
    dnis = DnisDirectory(pool, PHONES)
    random.seed(7)
    kinds = {
        # National notation, as a German trunk delivers the ANI: normalised before the query.
        "ani": lambda n: repository.find_by_phone("0" + landline(n)[3:]),
        "account": lambda n: repository.find_by_account(account(n)),
        "dnis": lambda n: dnis.service_for(f"030 900{n % DNIS_NUMBERS:04d}"),
    }
    timings: dict[str, list[float]] = {kind: [] for kind in kinds}
    for round_number in range(WARMUP + lookups):
        kind = ("ani", "account", "dnis")[round_number % 3]
        started = time.perf_counter()
        found = await kinds[kind](random.randint(1, customers))
        elapsed_ms = (time.perf_counter() - started) * 1000
        assert found, kind
        if round_number >= WARMUP:
            timings[kind].append(elapsed_ms)
    return timings


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=30_000)
    args = parser.parse_args()
    logs.configure("console", "warning")
    async with scratch_pool(pool_size=2) as pool:
        await load(pool, args.customers)
        timings = await measure(pool, args.customers, args.lookups)
    worst = 0.0
    for kind, values in timings.items():
        values.sort()
        p99 = percentile(values, 0.99)
        worst = max(worst, p99)
        print(f"{kind}: {len(values)} lookups, p50 {percentile(values, 0.5):.3f} ms, p99 {p99:.3f} ms")
    print(f"crm_lookup p99_ms={worst:.3f}")


if __name__ == "__main__":
    uvloop.run(main())
