"""`cti crm score`: RFM scores, value score, tier and churn risk of every customer.

Over the last 365 days before ``now``:

- Recency R: the latest contact, a purchase or a completed interaction (any age);
- Frequency F: purchases plus completed interactions in the window;
- Monetary M: the sum of purchase amounts in the window.

Each becomes a score of 1-5: a customer without that activity (no contact ever, nothing bought
in the window) scores 1; the others score ``ceil(5 * cume_dist)`` among the customers with it,
i.e. their quintile, ties sharing the higher one. Scores are relative: they say how a customer
compares with the others, so a quiet year lowers nobody's tier on its own.
Then ``value_score = round(100 * (R + F + M - 3) / 12)`` (0-100), the tier is platinum from
80, gold from 60, silver from 35, else bronze, and ``churn_risk`` marks valuable customers gone
quiet: R <= 2 while F + M >= 8. VIP stays a human decision. One statement, so a run is atomic.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from crm_bridge.database import Database

log = structlog.get_logger(__name__)

WINDOW_DAYS = 365

_SCORE = """
WITH activity AS (
    SELECT c.id,
           greatest(p.last_purchase, i.last_contact) AS last_seen,
           coalesce(p.purchases, 0) + coalesce(i.contacts, 0) AS frequency,
           coalesce(p.spent, 0) AS monetary
    FROM customers c
    LEFT JOIN (
        SELECT customer_id, max(purchased_at) AS last_purchase,
               count(*) FILTER (WHERE purchased_at >= $1::timestamptz - make_interval(days => $2)) AS purchases,
               sum(amount) FILTER (WHERE purchased_at >= $1::timestamptz - make_interval(days => $2)) AS spent
        FROM purchases WHERE purchased_at <= $1::timestamptz GROUP BY customer_id) p ON p.customer_id = c.id
    LEFT JOIN (
        SELECT customer_id, max(started_at) AS last_contact,
               count(*) FILTER (WHERE started_at >= $1::timestamptz - make_interval(days => $2)) AS contacts
        FROM interactions
        WHERE customer_id IS NOT NULL AND outcome = 'completed' AND started_at <= $1::timestamptz
        GROUP BY customer_id) i ON i.customer_id = c.id
), scored AS (
    SELECT id,
           CASE WHEN last_seen IS NULL THEN 1 ELSE ceil(5 * cume_dist() OVER (
               PARTITION BY last_seen IS NULL ORDER BY last_seen)) END::smallint AS r,
           CASE WHEN frequency = 0 THEN 1 ELSE ceil(5 * cume_dist() OVER (
               PARTITION BY frequency = 0 ORDER BY frequency)) END::smallint AS f,
           CASE WHEN monetary = 0 THEN 1 ELSE ceil(5 * cume_dist() OVER (
               PARTITION BY monetary = 0 ORDER BY monetary)) END::smallint AS m
    FROM activity
), valued AS (
    SELECT id, r, f, m, round(100 * (r + f + m - 3) / 12.0)::smallint AS value_score FROM scored
)
UPDATE customers c
SET recency_score = v.r, frequency_score = v.f, monetary_score = v.m, value_score = v.value_score,
    tier = CASE WHEN v.value_score >= 80 THEN 'platinum' WHEN v.value_score >= 60 THEN 'gold'
                WHEN v.value_score >= 35 THEN 'silver' ELSE 'bronze' END,
    churn_risk = (v.r <= 2 AND v.f + v.m >= 8),
    scored_at = $1::timestamptz
FROM valued v
WHERE c.id = v.id
"""


@dataclass(frozen=True)
class ScoreReport:
    scored: int
    tiers: dict[str, int]
    churn_risk: int

    def lines(self) -> list[str]:
        tiers = ", ".join(f"{tier} {count}" for tier, count in self.tiers.items())
        return [f"scored {self.scored} customers: {tiers}; churn risk {self.churn_risk}"]


async def run_scoring(database: Database, now: datetime | None = None) -> ScoreReport:
    now = now or datetime.now(UTC)
    async with database.pool.acquire() as connection, connection.transaction():
        status = await connection.execute(_SCORE, now, WINDOW_DAYS)
        rows = await connection.fetch(
            "SELECT tier, count(*) AS customers, count(*) FILTER (WHERE churn_risk) AS at_risk "
            "FROM customers GROUP BY tier ORDER BY min(value_score) DESC")
    report = ScoreReport(int(status.split()[-1]), {row["tier"]: row["customers"] for row in rows},
                         sum(row["at_risk"] for row in rows))
    log.info("crm.scored", customers=report.scored, tiers=report.tiers, churn_risk=report.churn_risk)
    return report
