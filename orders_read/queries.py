"""Selectors: every read the pages and the API make, each from the read models only.

Each selector names the views it reads in ``VIEWS``, so that a caller holding a
consistency token knows which refresh units to wait for (``freshness``).
"""

from __future__ import annotations

import datetime
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from django.db import DatabaseError
from django.db.models import Count, F, Q, QuerySet, Sum
from django.db.models.functions import Coalesce, Now
from django.utils import timezone

from config.http.prepared import Statement
from orders_read import history, read_models, replicas, watcher
from orders_read.filters import OrderFilter, ProductFilter, StockFilter
from orders_read.freshness import Freshness, parse_token, replayed, units_behind, wait_for
from orders_read.models import (
    AllocationRow,
    BaseState,
    BatchAvailability,
    LineDay,
    OrderEvent,
    OrderLineRow,
    OrderSummary,
    ProductAvailability,
    RefreshState,
    WaitingLine,
    WatcherState,
)
from orders_read.read_models import READ_MODELS


class InvalidFilters(ValueError):
    """Filter values a list cannot apply; ``errors`` says which, per field."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        super().__init__(
            "; ".join(f"{field}: {' '.join(messages)}" for field, messages in errors.items())
        )


def _checked(filterset):
    """``filterset``, once its values are valid; InvalidFilters says which are not."""
    if not filterset.is_valid():
        raise InvalidFilters({field: list(errors) for field, errors in filterset.errors.items()})
    return filterset


def _filtered(
    filterset_class, filters: Mapping[str, object] | None, queryset: QuerySet
) -> QuerySet:
    return _checked(filterset_class(filters or {}, queryset=queryset)).qs


# The API's busiest lookup, prepared: planning it costs more than running it.
ALLOCATIONS_FOR = Statement(
    "allocations_for",
    ["text"],
    f"SELECT sku, batchref FROM {AllocationRow._meta.db_table} WHERE orderid = $1 ORDER BY sku",
)


def allocations_for(orderid: str) -> list[dict[str, str]]:
    """``[{"sku", "batchref"}]`` of an order, sorted by SKU (empty: no allocation)."""
    return [
        {"sku": sku, "batchref": batchref}
        for sku, batchref in ALLOCATIONS_FOR.fetchall([orderid], using=replicas.read_alias())
    ]


def orders(
    *,
    filters: Mapping[str, object] | None = None,
    matching: int | None = None,
    reach: int = 50,
) -> QuerySet[OrderSummary]:
    """Order summaries filtered by ``OrderFilter`` (status, customer, search, ordering),
    newest first by default, in a stable order fit for pagination.

    ``matching``, how many orders the filters hold (``order_count``) when the caller
    knows, and ``reach``, how far into the list the caller reads (a page's last row),
    choose how a customer or search filter reads: in the list's order, comparing each
    order, it reaches that row after about reach * orders / matching of them; on the
    trigram indexes it reads every matching order. The same rows in the same order
    either way. (PostgreSQL cannot choose: it takes a name's trigrams as independent
    and expects a handful of rows where thousands match.)"""
    filters = filters or {}
    filterset = OrderFilter(filters, queryset=OrderSummary.objects.all())
    if matching is not None and (filters.get("customer") or filters.get("search")):
        kept = kept_counts(OrderSummary._meta.db_table)
        if kept is not None:
            filterset.on_trigrams = reach * sum(kept.values()) > matching * matching
    return _checked(filterset).qs


# Filters that do not narrow which orders a list holds, only how it is sorted.
_NOT_NARROWING = {"ordering"}


def order_count(*, filters: Mapping[str, object] | None = None) -> int:
    """How many orders ``orders(filters=...)`` holds, exactly, without counting them
    when only the status narrows it: the rows per status that each refresh of
    ``order_summary`` keeps with its snapshot (so a query that waited for a write's
    token counts that write). Other filters are counted on their indexes."""
    filterset = _checked(OrderFilter(filters or {}, queryset=OrderSummary.objects.all()))
    narrowing = {
        name
        for name, value in filterset.form.cleaned_data.items()
        if value not in (None, "", []) and name not in _NOT_NARROWING
    }
    if narrowing <= {"status"}:
        kept = kept_counts(OrderSummary._meta.db_table)
        if kept is not None:
            status = filterset.form.cleaned_data.get("status")
            return kept.get(status, 0) if status else sum(kept.values())
    return filterset.qs.order_by().count()


def kept_counts(unit: str) -> dict[str, int] | None:
    """The rows readers of ``unit`` see per value of its counted column, as its last
    refresh kept them; None while they are unknown (before its first refresh)."""
    return (
        RefreshState.objects.filter(unit=unit, row_count__isnull=False)
        .values_list("value_counts", flat=True)
        .first()
    )


def order(reference: str) -> OrderSummary | None:
    return OrderSummary.objects.filter(reference=reference).first()


def order_values(reference: str, columns: Sequence[str]) -> tuple | None:
    """``order``'s ``columns``, as plain values: for an answer written without a model."""
    return OrderSummary.objects.filter(reference=reference).values_list(*columns).first()


def order_lines(reference: str) -> list[OrderLineRow]:
    return list(OrderLineRow.objects.filter(orderid=reference).order_by("sku"))


def order_line_values(reference: str, columns: Sequence[str]) -> list[dict]:
    """``order_lines``' ``columns``, as dicts: for an answer written without a model."""
    return list(OrderLineRow.objects.filter(orderid=reference).order_by("sku").values(*columns))


# What stock_expected says of a waiting order whose stock is in the warehouse already
# (released by a cancel after the order waited): it can be allocated now.
IN_WAREHOUSE = "now"


def stock_expected(references: Collection[str]) -> dict[str, datetime.date | str | None]:
    """When each of the waiting orders (``OrderSummary.waiting``) with these ``references``
    can have all its stock: IN_WAREHOUSE, the latest of its lines' earliest shipments with
    room for them, or None when one of its lines has no batch with room. Two queries,
    whatever the number of orders."""
    if not references:
        return {}
    waiting = list(
        OrderLineRow.objects.filter(orderid__in=references, batchref__isnull=True).values_list(
            "orderid", "sku", "qty"
        )
    )
    room: dict[str, list[tuple[datetime.date | None, int]]] = {}
    for sku, eta, available in BatchAvailability.objects.filter(
        sku__in={sku for _, sku, _ in waiting}, available__gt=0
    ).values_list("sku", "eta", "available"):
        room.setdefault(sku, []).append((eta, available))
    lines: dict[str, list[datetime.date | str | None]] = {}
    for orderid, sku, qty in waiting:
        fits = [eta for eta, available in room.get(sku, []) if available >= qty]
        lines.setdefault(orderid, []).append(
            None if not fits else IN_WAREHOUSE if None in fits else min(fits)
        )
    return {orderid: _all_in_stock_by(dates) for orderid, dates in lines.items()}


def with_stock_expected(orders: Sequence[OrderSummary]) -> Sequence[OrderSummary]:
    """The orders, each with ``stock_expected`` set (``stock_expected``; None for one
    that is not waiting)."""
    expected = stock_expected([order.reference for order in orders if order.is_waiting])
    for order in orders:
        order.stock_expected = expected.get(order.reference)
    return orders


def _all_in_stock_by(dates: list[datetime.date | str | None]) -> datetime.date | str | None:
    if None in dates:
        return None
    shipments = [date for date in dates if date != IN_WAREHOUSE]
    return max(shipments) if shipments else IN_WAREHOUSE


def order_history(reference: str) -> list[OrderEvent] | None:
    """The order's events, oldest first, each with its ``description`` and ``reason``
    (``history``); None for an unknown order. Read from the event log itself, so always
    fresh; an order the log knows nothing of (loaded before events were) has an empty
    history. One query, two for an order without events."""
    entries = list(OrderEvent.objects.filter(reference=reference).order_by("id"))
    if not entries and not OrderSummary.objects.filter(reference=reference).exists():
        return None
    for entry in entries:
        entry.description, entry.reason = history.describe(entry), history.reason(entry)
    return entries


def products(*, filters: Mapping[str, object] | None = None) -> QuerySet[ProductAvailability]:
    """Availability per product by SKU, filtered by ``ProductFilter`` (in_stock)."""
    return _filtered(ProductFilter, filters, ProductAvailability.objects.order_by("sku"))


def stock_products(*, filters: Mapping[str, object] | None = None) -> QuerySet[ProductAvailability]:
    """The stock page's products: ``products`` with its search (SKU or name) too."""
    return _filtered(StockFilter, filters, ProductAvailability.objects.order_by("sku"))


def stock_products_before(sku: str, *, filters: Mapping[str, object] | None = None) -> int:
    """How many of ``stock_products(filters=...)`` come before ``sku``: its place in that
    list from 0, whether or not it is in it."""
    return stock_products(filters=filters).filter(sku__lt=sku).count()


def product(sku: str) -> ProductAvailability | None:
    return ProductAvailability.objects.filter(sku=sku).first()


def product_values(sku: str, columns: Sequence[str]) -> dict | None:
    """``product``'s ``columns``, as a dict: for an answer written without a model."""
    return ProductAvailability.objects.filter(sku=sku).values(*columns).first()


def batches(*, sku: str | None = None) -> QuerySet[BatchAvailability]:
    """Batches with their stock, warehouse stock first, then by ETA, as allocation prefers."""
    queryset = BatchAvailability.objects.order_by("sku", F("eta").asc(nulls_first=True), "batchref")
    if sku is not None:
        queryset = queryset.filter(sku=sku)
    return queryset


def watchers() -> list[dict[str, object]]:
    """Every `refresh_views --watch` that has reported and not stopped cleanly; ``running``
    when its heartbeat is recent, else it died or is stuck."""
    rows = WatcherState.objects.annotate(silent_for=Now() - F("heartbeat_at"))
    return [
        {
            "name": row.name,
            "host": row.host,
            "pid": row.pid,
            "units": row.units.split(","),
            "started_at": row.started_at,
            "last_heartbeat_at": row.heartbeat_at,
            "running": row.silent_for <= watcher.SILENT_AFTER,
        }
        for row in rows
    ]


def replicas_state() -> list[dict[str, object]]:
    """Each replica's health, checked now, with when each read model was last refreshed
    as that replica shows it (empty while it cannot answer)."""
    found = []
    for replica in replicas.replica_states(fresh=True):
        refreshed: dict[str, datetime.datetime | None] = {}
        if replica.lag_bytes is not None:  # it answered its health check
            try:
                refreshed = dict(
                    RefreshState.objects.using(replica.alias).values_list(
                        "unit", "last_refreshed_at"
                    )
                )
            except DatabaseError:
                replicas.forget_connection(replica.alias)
        refreshes = [when for when in refreshed.values() if when is not None]
        found.append(
            {
                "replica": replica,
                "refreshed": refreshed,
                "oldest_refresh": min(refreshes, default=None),
            }
        )
    return found


def read_model_states(
    seen_watchers: Sequence[Mapping[str, object]] | None = None,
    seen_replicas: Sequence[Mapping[str, object]] | None = None,
) -> list[dict[str, object]]:
    """The state of every refresh unit, whether or not it was ever refreshed, with the
    last heartbeat of the watchers that keep it fresh (``watchers()`` unless given), and
    how fresh it is on each replica (``replicas_state()`` unless given)."""
    seen_replicas = replicas_state() if seen_replicas is None else seen_replicas
    states = {state.unit: state for state in RefreshState.objects.all()}
    bases = {base.unit: base for base in BaseState.objects.all()}
    behind = set(units_behind())
    seen_watchers = watchers() if seen_watchers is None else seen_watchers
    rows = []
    for name in READ_MODELS:
        state, base = states.get(name), bases.get(name)
        its_watchers = [each for each in seen_watchers if name in each["units"]]
        rows.append(
            {
                "name": name,
                "view": name,
                "last_refreshed_at": state and state.last_refreshed_at,
                "last_duration_ms": state and state.last_duration_ms,
                "row_count": state and state.row_count,
                "refresh_count": state.refresh_count if state else 0,
                "snapshot": state.snapshot if state else "",
                "last_error": state.last_error if state else "",
                "last_error_at": state and state.last_error_at,
                "behind": name in behind,
                "delta_row_count": state and state.delta_row_count,
                "base_rebuilt_at": base and base.rebuilt_at,
                "base_duration_ms": base and base.duration_ms,
                "base_row_count": base and base.row_count,
                "watcher_running": any(each["running"] for each in its_watchers),
                "watcher_heartbeat_at": max(
                    (each["last_heartbeat_at"] for each in its_watchers), default=None
                ),
                "replicas": [
                    {
                        "name": each["replica"].name,
                        "healthy": each["replica"].healthy,
                        "lag_bytes": each["replica"].lag_bytes,
                        "lag_seconds": each["replica"].lag_seconds,
                        "last_refreshed_at": each["refreshed"].get(name),
                    }
                    for each in seen_replicas
                ],
            }
        )
    return rows


# --- the dashboard -------------------------------------------------------------------

DASHBOARD_DAYS = 30  # the days the dashboard shows, today (UTC) the last
RECENT_DAYS = 7  # a product runs low with less available than was ordered in these
TOP_PRODUCTS = 10
LISTED = 20  # products listed as out of stock or running low, the rest counted


@dataclass(frozen=True)
class DayUnits:
    day: datetime.date
    ordered: int
    allocated: int


@dataclass(frozen=True)
class ProductUnits:
    sku: str
    name: str
    ordered: int
    allocated: int


@dataclass(frozen=True)
class StockAlert:
    """A product out of stock or running low, with what is asked of it."""

    sku: str
    name: str
    available: int
    available_now: int
    next_eta: datetime.date | None
    ordered_recently: int
    waiting_units: int


@dataclass(frozen=True)
class Dashboard:
    days: list[DayUnits]
    top_products: list[ProductUnits]
    out_of_stock: list[StockAlert]
    out_of_stock_count: int
    running_low: list[StockAlert]
    running_low_count: int
    waiting_orders: int
    waiting_lines: int
    waiting_units: int
    waiting_by_product: list[tuple[str, int, int]]  # (sku, lines, units), most units first

    @property
    def first_day(self) -> datetime.date:
        return self.days[0].day

    @property
    def last_day(self) -> datetime.date:
        return self.days[-1].day


def utc_today() -> datetime.date:
    """Today in UTC: the read models' days are UTC dates."""
    return timezone.now().astimezone(datetime.UTC).date()


def dashboard(*, today: datetime.date | None = None) -> Dashboard:
    """What the managers' dashboard shows, from the read models, in six queries
    whatever the number of orders and products: the last DASHBOARD_DAYS days' units
    ordered and allocated, the top products by units ordered then, products out of stock
    (nothing available, in the warehouse or on its way) or running low (less available
    than was ordered in the last RECENT_DAYS days), and what waits for stock."""
    last_day = today or utc_today()
    first_day = last_day - datetime.timedelta(days=DASHBOARD_DAYS - 1)
    line_days = LineDay.objects.order_by()
    recent_first_day = last_day - datetime.timedelta(days=RECENT_DAYS - 1)

    # One pass over the month's lines, grouped in the order of the index that holds them
    # (day, then SKU): no sort of ~0.2 M rows at a million orders a year (55 ms, where
    # grouping them by SKU alone sorted them on disk: 430-880 ms). Python adds up the
    # ~30 x products groups by day and by SKU.
    ordered: dict[datetime.date, int] = {}
    by_sku: dict[str, list[int]] = {}  # ordered, of which allocated
    ordered_recently: dict[str, int] = {}
    for day, sku, units, allocated_units in (
        line_days.filter(ordered_on__range=(first_day, last_day))
        .values("ordered_on", "sku")
        .annotate(
            units=Sum("qty"),
            allocated_units=Coalesce(Sum("qty", filter=Q(allocated_on__isnull=False)), 0),
        )
        .order_by("ordered_on", "sku")
        .values_list("ordered_on", "sku", "units", "allocated_units")
    ):
        ordered[day] = ordered.get(day, 0) + units
        totals = by_sku.setdefault(sku, [0, 0])
        totals[0] += units
        totals[1] += allocated_units
        if day >= recent_first_day:
            ordered_recently[sku] = ordered_recently.get(sku, 0) + units
    allocated = dict(
        line_days.filter(allocated_on__range=(first_day, last_day))
        .values("allocated_on")
        .annotate(units=Sum("qty"))
        .order_by("allocated_on")
        .values_list("allocated_on", "units")
    )
    days = []
    for offset in range(DASHBOARD_DAYS):
        day = first_day + datetime.timedelta(days=offset)
        days.append(DayUnits(day, ordered.get(day, 0), allocated.get(day, 0)))

    top = sorted(by_sku.items(), key=lambda item: (-item[1][0], item[0]))[:TOP_PRODUCTS]
    names = dict(
        ProductAvailability.objects.filter(sku__in=[sku for sku, _ in top]).values_list(
            "sku", "name"
        )
    )
    top_products = [
        ProductUnits(sku, names.get(sku, sku), units, allocated_units)
        for sku, (units, allocated_units) in top
    ]

    # Every SKU's waiting lines at once, in the order of the index that holds them: one
    # pass, where a subquery per product would read them again for each.
    waiting_by_sku = {
        sku: (lines, units)
        for sku, lines, units in WaitingLine.objects.order_by()
        .values("sku")
        .annotate(lines=Count("qty"), units=Sum("qty"))
        .order_by("sku")
        .values_list("sku", "lines", "units")
    }
    most_ordered = max(ordered_recently.values(), default=0)
    alerts = [
        StockAlert(
            **row,
            ordered_recently=ordered_recently.get(row["sku"], 0),
            waiting_units=waiting_by_sku.get(row["sku"], (0, 0))[1],
        )
        for row in ProductAvailability.objects.filter(
            Q(available__lte=0) | Q(available__lt=most_ordered)
        )
        .order_by("available", "sku")
        .values("sku", "name", "available", "available_now", "next_eta")
    ]
    out_of_stock = [alert for alert in alerts if alert.available <= 0]
    running_low = [alert for alert in alerts if 0 < alert.available < alert.ordered_recently]
    running_low.sort(key=lambda alert: (alert.available / alert.ordered_recently, alert.sku))

    waiting_orders = WaitingLine.objects.order_by().aggregate(
        orders=Count("order_id", distinct=True)
    )["orders"]
    waiting_by_product = sorted(
        ((sku, lines, units) for sku, (lines, units) in waiting_by_sku.items()),
        key=lambda row: (-row[2], row[0]),
    )
    return Dashboard(
        days=days,
        top_products=top_products,
        out_of_stock=out_of_stock[:LISTED],
        out_of_stock_count=len(out_of_stock),
        running_low=running_low[:LISTED],
        running_low_count=len(running_low),
        waiting_orders=waiting_orders,
        waiting_lines=sum(lines for _, lines, _ in waiting_by_product),
        waiting_units=sum(units for _, _, units in waiting_by_product),
        waiting_by_product=waiting_by_product[:TOP_PRODUCTS],
    )


VIEWS: dict[str, Sequence[str]] = {
    "allocations_for": ("allocations_view",),
    "orders": ("order_summary", "order_lines_view", "batch_availability"),
    "order": ("order_summary", "order_lines_view", "batch_availability"),
    "order_history": (),  # the event log: nothing to wait for
    "products": ("product_availability",),
    "product": ("product_availability",),
    "stock": ("product_availability", "batch_availability"),
    "orders_export": ("order_summary",),
    "stock_export": ("product_availability",),
    "dashboard": ("line_days", "waiting_lines", "product_availability"),
    "read_models": tuple(sorted(READ_MODELS)),
}


def freshness(selector: str, token: str | None = None) -> Freshness:
    """Wait, if ``token`` is given, until the views ``selector`` reads show that write.

    Raises ``freshness.InvalidToken`` for a token this deployment did not issue.
    """
    transaction_id = parse_token(token) if token else None
    if not VIEWS[selector]:  # it reads the write tables: fresh now, with every write
        if transaction_id is not None and replicas.on_replica() and not replayed(transaction_id):
            raise replicas.NotCovered(lambda: replayed(transaction_id))
        return Freshness(timezone.now())
    return wait_for(read_models.named(VIEWS[selector]), transaction_id)
