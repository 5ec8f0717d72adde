"""Filters for the lists of orders and products, shared by the API and the pages."""

from __future__ import annotations

from collections.abc import Sequence
from functools import reduce
from operator import or_

import django_filters
from django.db.models import BooleanField, F, Func, Q, QuerySet, TextField, Value

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


class Trigrams(Func):
    """The trigrams of a text in upper case, as the read models' trigram indexes hold
    them (``read_models.TRIGRAMS_FUNCTION``)."""

    template = "read_trigrams(upper(%(expressions)s))"
    output_field = TextField()


class HasAll(Func):
    """``left @> right``: the array ``left`` holds every element of ``right``."""

    template = "%(expressions)s"
    arg_joiner = " @> "
    output_field = BooleanField()


# A text shorter than a trigram has none: its search cannot be narrowed on the index.
TRIGRAM_LENGTH = 3


def contains_any(columns: Sequence[str], value: str, *, on_trigrams: bool = True) -> Q:
    """One of ``columns`` contains ``value`` in any case (icontains). With
    ``on_trigrams`` and a value of a trigram or more, the rows are first narrowed on the
    columns' trigram indexes to those whose column holds all the value's trigrams; the
    comparison then keeps the meaning exact. Without, the rows are read in the list's
    order and compared one by one: faster for a first page when most rows match."""
    condition = reduce(or_, (Q(**{f"{column}__icontains": value}) for column in columns))
    if on_trigrams and len(value) >= TRIGRAM_LENGTH:
        # Its own OR, which the trigram indexes answer (a BitmapOr), apart from the
        # comparison: PostgreSQL then leaves it to the indexes instead of computing the
        # trigrams of every row it reads again.
        condition &= reduce(
            or_,
            (Q(HasAll(Trigrams(F(column)), Trigrams(Value(value)))) for column in columns),
        )
    return condition


class OrderFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=STATUSES, help_text="Only orders in this status.")
    customer = django_filters.CharFilter(
        method="filter_customer",
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

    # Whether the customer and search filters narrow on the trigram indexes (see
    # ``contains_any``); ``queries.orders`` turns it off when most orders match.
    on_trigrams = True

    def filter_customer(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(contains_any(["customer_name"], value, on_trigrams=self.on_trigrams))

    def filter_search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(
            contains_any(["reference", "customer_name"], value, on_trigrams=self.on_trigrams)
        )

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
