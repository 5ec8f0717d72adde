"""Checking the read models against the truth: each view's own query, run on the write tables."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import connection, transaction

from orders_read import refresh


@dataclass
class ViewCheck:
    view: str
    columns: list[str]
    missing: list[tuple] = field(default_factory=list)  # in the truth, not in the view
    unexpected: list[tuple] = field(default_factory=list)  # in the view, not in the truth
    total_differences: int = 0

    @property
    def ok(self) -> bool:
        return self.total_differences == 0


def check_view(view: str, *, sample: int = 20) -> ViewCheck:
    """Compare ``view`` with its defining query (``pg_get_viewdef``) in one snapshot."""
    quoted = connection.ops.quote_name(view)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cursor.execute("SELECT pg_get_viewdef(%s::regclass)", [view])
        definition = cursor.fetchone()[0].strip().rstrip(";")
        cursor.execute(
            f"""
            WITH truth AS ({definition}), current_rows AS (SELECT * FROM {quoted}),
            missing AS (SELECT * FROM truth EXCEPT ALL SELECT * FROM current_rows),
            unexpected AS (SELECT * FROM current_rows EXCEPT ALL SELECT * FROM truth)
            SELECT 'missing' AS side, * FROM missing
            UNION ALL SELECT 'unexpected', * FROM unexpected
            """
        )
        columns = [column.name for column in cursor.description][1:]
        result = ViewCheck(view, columns)
        for row in cursor:
            result.total_differences += 1
            side, values = row[0], tuple(row[1:])
            bucket = result.missing if side == "missing" else result.unexpected
            if len(bucket) < sample:
                bucket.append(values)
    return result


def check_all(views: list[str] | None = None) -> list[ViewCheck]:
    views = views or refresh.views()
    return [check_view(view) for view in views]
