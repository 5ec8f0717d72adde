"""Selectors: every read the pages and the API make, each from the read models only.

Each selector names the views it reads in ``VIEWS``, so that a caller holding a
consistency token knows which refresh units to wait for (``freshness``).
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db.models import Q, QuerySet

from orders_read import refresh
from orders_read.models import (
    AllocationRow,
    BatchAvailability,
    OrderLineRow,
    OrderSummary,
    ProductAvailability,
    RefreshState,
)

# Columns a list of orders may be sorted by (with "-" for descending).
ORDER_ORDERINGS = (
    "created_at",
    "reference",
    "customer_name",
    "status",
    "line_count",
    "total_quantity",
    "total_amount",
)
# A unique column last, so that pages of a sorted list never overlap.
_TIEBREAK = {"created_at": "id", "reference": None}


def allocations_for(orderid: str) -> list[dict[str, str]]:
    """``[{"sku", "batchref"}]`` of an order, sorted by SKU (empty: no allocation)."""
    return list(
        AllocationRow.objects.filter(orderid=orderid).order_by("sku").values("sku", "batchref")
    )


def orders(
    *,
    status: str | None = None,
    customer: str | None = None,
    search: str | None = None,
    ordering: str = "-created_at",
) -> QuerySet[OrderSummary]:
    """Order summaries, filtered, in a stable order fit for pagination."""
    queryset = OrderSummary.objects.all()
    if status:
        queryset = queryset.filter(status=status)
    if customer:
        queryset = queryset.filter(customer_name__icontains=customer)
    if search:
        queryset = queryset.filter(
            Q(reference__icontains=search) | Q(customer_name__icontains=search)
        )
    return queryset.order_by(*order_ordering(ordering))


def order_ordering(ordering: str) -> list[str]:
    """The ORDER BY for an allowed ordering, with a unique tiebreak; unknown: newest first."""
    column = ordering.removeprefix("-")
    if column not in ORDER_ORDERINGS:
        ordering, column = "-created_at", "created_at"
    descending = ordering.startswith("-")
    tiebreak = _TIEBREAK.get(column, "id")
    fields = [ordering]
    if tiebreak:
        fields.append(f"-{tiebreak}" if descending else tiebreak)
    return fields


def order(reference: str) -> OrderSummary | None:
    return OrderSummary.objects.filter(reference=reference).first()


def order_lines(reference: str) -> list[OrderLineRow]:
    return list(OrderLineRow.objects.filter(orderid=reference).order_by("sku"))


def products(*, in_stock: bool | None = None) -> QuerySet[ProductAvailability]:
    queryset = ProductAvailability.objects.order_by("sku")
    if in_stock is True:
        queryset = queryset.filter(available__gt=0)
    elif in_stock is False:
        queryset = queryset.filter(available__lte=0)
    return queryset


def product(sku: str) -> ProductAvailability | None:
    return ProductAvailability.objects.filter(sku=sku).first()


def batches(*, sku: str | None = None) -> QuerySet[BatchAvailability]:
    """Batches with their stock, warehouse stock first, then by ETA, as allocation prefers."""
    queryset = BatchAvailability.objects.order_by("sku", "eta", "batchref")
    if sku is not None:
        queryset = queryset.filter(sku=sku)
    return queryset


def read_model_states() -> list[dict[str, object]]:
    """The state of every refresh unit, whether or not it was ever refreshed."""
    states = {state.unit: state for state in RefreshState.objects.all()}
    behind = set(refresh.units_behind())
    rows = []
    for name, unit in refresh.UNITS.items():
        state = states.get(name)
        rows.append(
            {
                "name": name,
                "view": unit.view,
                "last_refreshed_at": state and state.last_refreshed_at,
                "last_duration_ms": state and state.last_duration_ms,
                "row_count": state and state.row_count,
                "refresh_count": state.refresh_count if state else 0,
                "snapshot": state.snapshot if state else "",
                "last_error": state.last_error if state else "",
                "last_error_at": state and state.last_error_at,
                "behind": name in behind,
            }
        )
    return rows


VIEWS: dict[str, Sequence[str]] = {
    "allocations_for": ("allocations_view",),
    "orders": ("order_summary",),
    "order": ("order_summary", "order_lines_view"),
    "products": ("product_availability",),
    "product": ("product_availability",),
    "stock": ("product_availability", "batch_availability"),
}


def freshness(selector: str, token: str | None = None) -> refresh.Freshness:
    """Wait, if ``token`` is given, until the views ``selector`` reads show that write.

    Raises ``refresh.InvalidToken`` for a token this deployment did not issue.
    """
    transaction_id = refresh.parse_token(token) if token else None
    return refresh.wait_for(refresh.units_of_views(VIEWS[selector]), transaction_id)
