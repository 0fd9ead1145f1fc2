"""pg_stat_activity grouped the way the connection-exhaustion checklist reads it."""

from __future__ import annotations

from typing import Any

from enrichment_pipeline.db.resource import PostgresResource

_GROUPED = """
SELECT coalesce(nullif(application_name, ''), '(none)') AS application_name,
       coalesce(state, '(background)') AS state,
       count(*) AS count,
       round(extract(epoch FROM max(now() - xact_start))::numeric, 1) AS oldest_xact_s,
       round(extract(epoch FROM max(now() - query_start) FILTER (WHERE state = 'active'))::numeric, 1) AS oldest_query_s
FROM pg_stat_activity
WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
GROUP BY 1, 2
ORDER BY count(*) DESC, 1, 2
"""


def activity(postgres: PostgresResource) -> tuple[list[dict[str, Any]], int]:
    """Client connections by application_name and state, oldest transaction per group; and the total (us included)."""
    with postgres.connection("connections") as conn:
        cursor = conn.execute(_GROUPED)
        names = [c.name for c in cursor.description]
        rows = [dict(zip(names, (float(v) if hasattr(v, "as_integer_ratio") and not isinstance(v, int) else v for v in row)))
                for row in cursor.fetchall()]
    return rows, sum(int(r["count"]) for r in rows) + 1
