"""Checking the read models against the truth: each view's own query, run on the write tables.

A read model is a plain view over a base and a delta (see ``read_models``). The check
compares, in one snapshot, what readers see (the plain view) with its defining
query run on the write tables now: every row readers can get from either piece (the
delta's for its keys, the base's for every other key) must be the truth. Rows the
delta hides are not compared: no reader sees them, and a base rebuilt since the
delta's refresh legitimately leaves keys in the delta that the base now covers too.

The check runs on any database holding both: the primary, or a read replica, where the
views and the write tables arrive together by streaming.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import DEFAULT_DB_ALIAS, connections, transaction

from orders_read.read_models import READ_MODELS, parse_counts


@dataclass
class ViewCheck:
    view: str
    columns: list[str]
    missing: list[tuple] = field(default_factory=list)  # in the truth, not in the view
    unexpected: list[tuple] = field(default_factory=list)  # in the view, not in the truth
    total_differences: int = 0
    # Per counted value whose kept count (``value_counts``) is not the truth's:
    # (kept, true); kept counts unknown yet (None) are not compared.
    count_differences: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.total_differences == 0 and not self.count_differences


def _differences(cursor, truth: str, current: str):
    """Rows ('missing' | 'unexpected', *values) between two queries; a cursor over them."""
    cursor.execute(
        f"""
        WITH truth AS ({truth}), current_rows AS ({current}),
        missing AS (SELECT * FROM truth EXCEPT ALL SELECT * FROM current_rows),
        unexpected AS (SELECT * FROM current_rows EXCEPT ALL SELECT * FROM truth)
        SELECT 'missing' AS side, * FROM missing
        UNION ALL SELECT 'unexpected', * FROM unexpected
        """
    )
    return cursor


def check_view(view: str, *, sample: int = 20, using: str = DEFAULT_DB_ALIAS) -> ViewCheck:
    """Compare what readers of ``view`` see with its defining query, in one snapshot of
    the database ``using``."""
    unit = READ_MODELS[view]
    connection = connections[using]
    quote = connection.ops.quote_name
    with transaction.atomic(using=using), connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        _differences(cursor, unit.query(), f"SELECT * FROM {quote(unit.name)}")
        result = ViewCheck(view, [column.name for column in cursor.description][1:])
        for row in cursor:
            result.total_differences += 1
            side, values = row[0], tuple(row[1:])
            bucket = result.missing if side == "missing" else result.unexpected
            if len(bucket) < sample:
                bucket.append(values)
        if unit.counted_by:
            result.count_differences = _count_differences(cursor, unit)
    return result


def _count_differences(cursor, unit) -> dict[str, tuple[int, int]]:
    """The counted values whose kept counts differ from the truth's, now."""
    cursor.execute(
        f"SELECT ({unit.value_counts(f'({unit.query()}) truth')}),"
        " (SELECT value_counts FROM read_model_state"
        "  WHERE unit = %s AND row_count IS NOT NULL)",
        [unit.name],
    )
    truth, kept = (parse_counts(counts) for counts in cursor.fetchone())
    if kept is None:
        return {}
    return {
        value: (kept.get(value, 0), truth.get(value, 0))
        for value in sorted({*truth, *kept})
        if kept.get(value, 0) != truth.get(value, 0)
    }


def check_all(views: list[str] | None = None, *, using: str = DEFAULT_DB_ALIAS) -> list[ViewCheck]:
    views = views or sorted(READ_MODELS)
    return [check_view(view, using=using) for view in views]
