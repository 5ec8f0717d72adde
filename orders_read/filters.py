"""Filters for the lists of orders and products, shared by the API and the pages."""

from __future__ import annotations

import django_filters
from django.db.models import F, Q, QuerySet

from orders_read.models import OrderSummary, ProductAvailability
from orders_write.domain import STATUS_LABELS, SUBMITTED

STATUSES = list(STATUS_LABELS.items())

ORDER_ORDERINGS = {
    "created_at": "Created",
    "reference": "Reference",
    "customer_name": "Customer",
    "status": "Status",
    "line_count": "Lines",
    "total_quantity": "Quantity",
    "total_amount": "Amount",
}


class OrderFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=STATUSES, help_text="Only orders in this status.")
    customer = django_filters.CharFilter(
        field_name="customer_name",
        lookup_expr="icontains",
        max_length=255,
        help_text="Customer name contains this (any case).",
    )
    search = django_filters.CharFilter(
        method="filter_search",
        max_length=255,
        help_text="Reference or customer name contains this (any case).",
    )
    waiting = django_filters.ChoiceFilter(
        choices=[("true", "Waiting for stock"), ("false", "Not waiting")],
        method="filter_waiting",
        help_text="true: submitted orders with a line that found no stock yet; false: the rest.",
    )
    ordering = django_filters.OrderingFilter(
        fields={column: column for column in ORDER_ORDERINGS},
        field_labels=ORDER_ORDERINGS,
        help_text="Sort by a column; '-' before it for descending. Default: -created_at.",
    )

    class Meta:
        model = OrderSummary
        fields = ["status", "waiting", "customer", "search", "ordering"]

    def filter_waiting(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        waiting = Q(status=SUBMITTED, allocated_line_count__lt=F("line_count"))
        return queryset.filter(waiting) if value == "true" else queryset.exclude(waiting)

    def filter_search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(Q(reference__icontains=value) | Q(customer_name__icontains=value))

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        queryset = super().filter_queryset(queryset)
        # Newest first by default, and a unique column last so pages never overlap.
        ordering = [*(queryset.query.order_by or ["-created_at"])]
        tiebreak = "-id" if ordering[0].startswith("-") else "id"
        return queryset.order_by(*ordering, tiebreak)


class ProductFilter(django_filters.FilterSet):
    # A choice, not a BooleanFilter: that one ignores a value it cannot read.
    in_stock = django_filters.ChoiceFilter(
        choices=[("true", "In stock"), ("false", "Out of stock")],
        method="filter_in_stock",
        help_text="true: some stock available; false: none.",
    )

    class Meta:
        model = ProductAvailability
        fields = ["in_stock"]

    def filter_in_stock(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        if value == "true":
            return queryset.filter(available__gt=0)
        return queryset.filter(available__lte=0)


class StockFilter(ProductFilter):
    """The stock page's filters: in stock or not, and a search."""

    search = django_filters.CharFilter(
        method="filter_search",
        max_length=255,
        help_text="SKU or product name contains this (any case).",
    )

    class Meta(ProductFilter.Meta):
        fields = ["search", "in_stock"]

    def filter_search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(Q(sku__icontains=value) | Q(name__icontains=value))
