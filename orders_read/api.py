"""The query API: each endpoint reads one selector of ``queries`` and says how fresh it is.

Every answer carries ``X-Read-Model-Refreshed-At``; a request carrying a command's
``X-Consistency-Token`` waits until the views it reads show that write, and answers
``X-Read-Model-Stale: true`` if they still do not after READ_MODEL_MAX_WAIT seconds.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Iterable

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_view,
)
from rest_framework import exceptions, generics, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from config.http.api import error_responses
from config.http.restframework import OneFormat
from orders_read import api_examples, queries, replicas
from orders_read.filters import OrderFilter, ProductFilter
from orders_read.freshness import InvalidToken
from orders_read.models import OrderSummary, ProductAvailability

FRESHNESS_PARAMETERS = [
    OpenApiParameter(
        "X-Consistency-Token",
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        description="A command's token: answer only once the read models show that write.",
    ),
    OpenApiParameter(
        "X-Read-Model-Refreshed-At",
        OpenApiTypes.DATETIME,
        OpenApiParameter.HEADER,
        response=True,
        description="When the oldest read model behind this answer was refreshed (ISO 8601).",
    ),
    OpenApiParameter(
        "X-Read-Model-Stale",
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        response=True,
        description="'true' when the write named by X-Consistency-Token is not shown yet.",
    ),
    OpenApiParameter(
        "X-Read-Model-Source",
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        response=True,
        description="Where the answer was read: 'primary', or 'replica-N' for the streaming"
        " replica replica_N (DATABASE_REPLICA_URLS).",
    ),
]


QUERY_ERRORS = {
    400: "Invalid filter or consistency token.",
    401: "Not authenticated.",
    403: "Not permitted (needs the viewers' permissions).",
    404: "Not found.",
}


def _errors(*codes: int) -> dict:
    return error_responses(QUERY_ERRORS, *codes)


class QueryView(APIView):
    """Waits for the request's consistency token, then adds the freshness headers."""

    selector: str
    # Each view names its own; None (no view named any) is closed.
    required_permissions: tuple[str, ...] | None = None
    content_negotiation_class = OneFormat

    def dispatch(self, request, *args, **kwargs):
        # On a replica when one is healthy (``replicas``); it may answer twice.
        return replicas.answer(functools.partial(super().dispatch, request, *args, **kwargs))

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        try:
            self.freshness = queries.freshness(
                self.selector, request.headers.get("X-Consistency-Token")
            )
        except InvalidToken as error:
            raise exceptions.ValidationError({"X-Consistency-Token": [error.message]}) from None

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        freshness = getattr(self, "freshness", None)
        if freshness is not None:
            for name, value in freshness.headers().items():
                response[name] = value
        return response


class AllocationsApi(QueryView):
    selector = "allocations_for"
    required_permissions = ("orders_read.view_allocationrow",)

    class OutputSerializer(serializers.Serializer):
        sku = serializers.CharField()
        batchref = serializers.CharField()

    @extend_schema(
        operation_id="order_allocations",
        summary="Read an order's allocations",
        description=(
            "Each allocated line of the order, by SKU, with the batch that holds it. 404 "
            "while none of its lines is allocated."
        ),
        examples=api_examples.ORDER_ALLOCATIONS,
        responses={200: OutputSerializer(many=True), **_errors(400, 401, 403, 404)},
        parameters=FRESHNESS_PARAMETERS,
    )
    def get(self, request, orderid: str):
        rows = queries.allocations_for(orderid)
        if not rows:
            raise exceptions.NotFound(f"Order {orderid} has no allocation.")
        return Response(rows)  # already the OutputSerializer's dicts


# A paginated list read by its selector (``list_selector``), which applies the filters;
# ``filterset_class`` only documents them. Its page is written by ``page_rows`` as plain
# dicts, which ``serializer_class`` only documents: writing them through it cost about a
# third of the orders list's server CPU (README, "Performance"). (No docstring: the
# schema shows QueryView's.)
class SelectorListView(QueryView, generics.ListAPIView):
    def list_selector(self, *, filters):
        raise NotImplementedError

    def page_rows(self, queryset) -> list[dict]:
        """The requested page of ``queryset`` (``paginate_queryset``), as its JSON objects."""
        raise NotImplementedError

    def list(self, request, *args, **kwargs):
        return self.get_paginated_response(self.page_rows(self.get_queryset()))

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            # drf-spectacular asks for the model while it builds the schema: no request
            # to read, and maybe no database yet (`manage.py check --deploy`).
            return self.serializer_class.Meta.model.objects.none()
        try:
            return self.list_selector(filters=self.request.query_params)
        except queries.InvalidFilters as error:
            raise exceptions.ValidationError(error.errors) from None

    def filter_queryset(self, queryset):
        return queryset  # the selector has filtered it


# Documents the summaries that order_summaries writes.
class OrderSummarySerializer(serializers.ModelSerializer):
    waiting = serializers.BooleanField(
        source="is_waiting",
        read_only=True,
        help_text="Submitted, with a line that found no stock yet: waiting for stock.",
    )
    stock_expected = serializers.CharField(
        allow_null=True,
        read_only=True,
        help_text="For a waiting order, when all its stock can be had: the date (YYYY-MM-DD)"
        " of the latest of its lines' earliest shipments with room for them, or 'now' when"
        " the warehouse has it; null when no stock is expected, or the order is not waiting.",
    )

    class Meta:
        model = OrderSummary
        fields = [
            "reference",
            "customer_name",
            "shipping_address",
            "status",
            "line_count",
            "total_quantity",
            "total_amount",
            "allocated_line_count",
            "waiting",
            "stock_expected",
            "created_at",
        ]


def drf_time(moment: datetime.datetime, zone: datetime.tzinfo) -> str:
    """``moment`` as DRF's DateTimeField writes it: ISO 8601 in ``zone`` (the current time
    zone, read once per answer: reading it costs more than this), UTC written Z."""
    text = moment.astimezone(zone).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


# The columns of OrderSummarySerializer's fields, in its order; the other two are derived.
ORDER_SUMMARY_COLUMNS = tuple(
    name for name in OrderSummarySerializer.Meta.fields if name not in {"waiting", "stock_expected"}
)


def order_summaries(rows: Iterable[tuple]) -> list[dict]:
    """Summaries (ORDER_SUMMARY_COLUMNS' values) as OrderSummarySerializer writes them,
    the same JSON byte for byte: ``total_amount`` stays a Decimal of two places, which the
    renderer writes as DRF's DecimalField does ("12.50"), and ``stock_expected`` is read
    for the waiting ones (``queries.stock_expected``) and written as text like a
    CharField."""
    zone = timezone.get_current_timezone()
    summaries = [
        {
            "reference": reference,
            "customer_name": customer_name,
            "shipping_address": shipping_address,
            "status": status,
            "line_count": line_count,
            "total_quantity": total_quantity,
            "total_amount": total_amount,
            "allocated_line_count": allocated_line_count,
            "waiting": OrderSummary.waiting(status, line_count, allocated_line_count),
            "stock_expected": None,
            "created_at": drf_time(created_at, zone),
        }
        for (
            reference,
            customer_name,
            shipping_address,
            status,
            line_count,
            total_quantity,
            total_amount,
            allocated_line_count,
            created_at,
        ) in rows
    ]
    waiting = [summary for summary in summaries if summary["waiting"]]
    expected = queries.stock_expected([summary["reference"] for summary in waiting])
    for summary in waiting:
        when = expected.get(summary["reference"])
        summary["stock_expected"] = None if when is None else str(when)
    return summaries


@extend_schema_view(
    get=extend_schema(
        operation_id="list_orders",
        summary="List orders",
        description=(
            "Order summaries, newest first unless `ordering` says otherwise, a page at a "
            "time. A `waiting` order says when its stock is expected."
        ),
        examples=api_examples.LIST_ORDERS,
        responses={200: OrderSummarySerializer(many=True), **_errors(400, 401, 403, 404)},
        parameters=FRESHNESS_PARAMETERS,
    )
)
class OrderListApi(SelectorListView):
    selector = "orders"
    required_permissions = ("orders_read.view_ordersummary",)
    serializer_class = OrderSummarySerializer
    filterset_class = OrderFilter

    @functools.cached_property
    def _matching(self) -> int:
        # The filters were checked when the list was read (get_queryset).
        return queries.order_count(filters=self.request.query_params)

    def count_results(self) -> int:
        return self._matching

    def list_selector(self, *, filters):
        # Read as fits how many match (``queries.orders``): the same rows, in the same order.
        try:
            number = max(int(self.request.query_params.get("page", 1)), 1)
        except ValueError:
            number = 1  # the paginator answers it
        return queries.orders(
            filters=filters,
            matching=self._matching,
            reach=number * self.paginator.get_page_size(self.request),
        )

    def page_rows(self, queryset) -> list[dict]:
        return order_summaries(self.paginate_queryset(queryset.values_list(*ORDER_SUMMARY_COLUMNS)))


# What OrderLineSerializer writes of each line, read as plain values: the Decimals (two
# places) are written by the renderer as its DecimalFields wrote them.
ORDER_LINE_COLUMNS = ("sku", "product_name", "qty", "unit_price", "amount", "batchref")


# Documents the lines that OrderDetailApi writes.
class OrderLineSerializer(serializers.Serializer):
    sku = serializers.CharField()
    product_name = serializers.CharField()
    qty = serializers.IntegerField()
    unit_price = serializers.DecimalField(max_digits=12, decimal_places=2)
    amount = serializers.DecimalField(max_digits=22, decimal_places=2)
    batchref = serializers.CharField(allow_null=True, help_text="null: not allocated.")


class OrderDetailSerializer(OrderSummarySerializer):
    lines = OrderLineSerializer(many=True)

    class Meta(OrderSummarySerializer.Meta):
        fields = [*OrderSummarySerializer.Meta.fields, "lines"]


class OrderDetailApi(QueryView):
    selector = "order"
    required_permissions = ("orders_read.view_ordersummary", "orders_read.view_orderlinerow")

    @extend_schema(
        operation_id="get_order",
        summary="Read an order and its lines",
        description=(
            "The order's summary and its lines, each with the batch that holds it (`batchref` "
            "null: not allocated)."
        ),
        examples=api_examples.GET_ORDER,
        responses={200: OrderDetailSerializer, **_errors(400, 401, 403, 404)},
        parameters=FRESHNESS_PARAMETERS,
    )
    def get(self, request, reference: str):
        values = queries.order_values(reference, ORDER_SUMMARY_COLUMNS)
        if values is None:
            raise exceptions.NotFound(f"Unknown order {reference}.")
        (order,) = order_summaries([values])
        order["lines"] = queries.order_line_values(reference, ORDER_LINE_COLUMNS)
        return Response(order)  # as OrderDetailSerializer wrote it


class OrderHistoryApi(QueryView):
    """The order's events from the log, oldest first: what happened, when, and who acted."""

    selector = "order_history"
    required_permissions = ("orders_read.view_ordersummary",)

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField(help_text="The event's place in the log.")
        time = serializers.DateTimeField(source="recorded_at")
        event = serializers.CharField(source="kind", help_text="The domain event's name.")
        actor = serializers.CharField(
            help_text="The user or integration whose request issued the command;"
            " 'system' for operators' commands."
        )
        description = serializers.CharField(help_text="What happened, in words.")
        reason = serializers.CharField(
            allow_null=True,
            help_text="Why a line was allocated, released or found no stock, when another"
            " event of the same command says (a cancel, a batch received or changed).",
        )
        data = serializers.DictField(source="payload", help_text="The event's fields.")

    @extend_schema(
        operation_id="get_order_history",
        summary="An order's history",
        responses={200: OutputSerializer(many=True), **_errors(400, 401, 403, 404)},
        parameters=FRESHNESS_PARAMETERS,
        examples=api_examples.ORDER_HISTORY,
    )
    def get(self, request, reference: str):
        entries = queries.order_history(reference)
        if entries is None:
            raise exceptions.NotFound(f"Unknown order {reference}.")
        return Response(self.OutputSerializer(entries, many=True).data)


# Documents the availability that the product endpoints write from plain values (its
# fields' columns, read as dicts: the renderer writes the price, a Decimal of two places,
# and the ETA, a date, as its fields wrote them).
class ProductSerializer(serializers.ModelSerializer):
    class Meta:
        model = ProductAvailability
        fields = [
            "sku",
            "name",
            "price",
            "purchased",
            "allocated",
            "available",
            "available_now",
            "next_eta",
            "batch_count",
        ]


@extend_schema_view(
    get=extend_schema(
        operation_id="list_products",
        summary="List products' availability",
        description=(
            "Availability per product, by SKU: purchased, allocated, available (in all and in "
            "the warehouse now), and the next shipment's ETA; a page at a time."
        ),
        examples=api_examples.LIST_PRODUCTS,
        responses={200: ProductSerializer(many=True), **_errors(400, 401, 403, 404)},
        parameters=FRESHNESS_PARAMETERS,
    )
)
class ProductListApi(SelectorListView):
    selector = "products"
    required_permissions = ("orders_read.view_productavailability",)
    list_selector = staticmethod(queries.products)
    serializer_class = ProductSerializer
    filterset_class = ProductFilter

    def page_rows(self, queryset) -> list[dict]:
        return self.paginate_queryset(queryset.values(*ProductSerializer.Meta.fields))


class ProductDetailApi(QueryView):
    selector = "product"
    required_permissions = ("orders_read.view_productavailability",)

    @extend_schema(
        operation_id="get_product",
        summary="Read a product's availability",
        description=(
            "One product's availability: purchased, allocated, available (in all and in the "
            "warehouse now), and the next shipment's ETA."
        ),
        examples=api_examples.GET_PRODUCT,
        responses={200: ProductSerializer, **_errors(400, 401, 403, 404)},
        parameters=FRESHNESS_PARAMETERS,
    )
    def get(self, request, sku: str):
        product = queries.product_values(sku, ProductSerializer.Meta.fields)
        if product is None:
            raise exceptions.NotFound(f"Unknown product {sku}.")
        return Response(product)


class ReplicaFreshnessSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="replica-1, replica-2, … (X-Read-Model-Source).")
    healthy = serializers.BooleanField(
        help_text="It answers, its replay is not paused, and it is less than a second behind"
        " the primary: queries are sent to it."
    )
    lag_bytes = serializers.IntegerField(
        allow_null=True, help_text="WAL the primary has written and it has not replayed."
    )
    lag_seconds = serializers.FloatField(
        allow_null=True,
        help_text="Since the last transaction it replayed committed, while it has more to"
        " replay; 0 when it has replayed all it received.",
    )
    last_refreshed_at = serializers.DateTimeField(
        allow_null=True, help_text="This read model's last refresh, as the replica shows it."
    )


class ReadModelStateSerializer(serializers.Serializer):
    name = serializers.CharField()
    view = serializers.CharField()
    last_refreshed_at = serializers.DateTimeField(allow_null=True)
    last_duration_ms = serializers.FloatField(allow_null=True)
    row_count = serializers.IntegerField(allow_null=True, help_text="Rows readers see.")
    refresh_count = serializers.IntegerField()
    snapshot = serializers.CharField(allow_blank=True)
    delta_row_count = serializers.IntegerField(
        allow_null=True, help_text="Rows of the delta view: what the last refresh rebuilt."
    )
    base_rebuilt_at = serializers.DateTimeField(
        allow_null=True, help_text="When the snapshot of the base view's last rebuild was taken."
    )
    base_duration_ms = serializers.FloatField(allow_null=True)
    base_row_count = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField(allow_blank=True)
    last_error_at = serializers.DateTimeField(allow_null=True)
    behind = serializers.BooleanField(help_text="Dirty, or missing a write of the event log.")
    watcher_running = serializers.BooleanField(
        help_text="A `refresh_views --watch` that keeps this view fresh sent a heartbeat within"
        " the last 10 seconds. False means none runs, or it died or is stuck: with"
        " READ_MODEL_REFRESH=async the view then falls behind."
    )
    watcher_heartbeat_at = serializers.DateTimeField(
        allow_null=True, help_text="The last heartbeat of a watcher of this view, if any."
    )
    replicas = ReplicaFreshnessSerializer(
        many=True,
        help_text="Each streaming replica (DATABASE_REPLICA_URLS) that queries may read on:"
        " its health and replay lag, and this read model's freshness there.",
    )


class ReadModelsApi(APIView):
    required_permissions = ("orders_read.view_refreshstate",)

    @extend_schema(
        operation_id="read_models",
        summary="Read the read models' state",
        description=(
            "Each read model's state: its last refresh, how long it took, its rows, its last "
            "error, and whether a watcher keeps it fresh."
        ),
        examples=api_examples.READ_MODELS,
        responses={200: ReadModelStateSerializer(many=True), **_errors(401, 403)},
    )
    def get(self, request):
        return Response(ReadModelStateSerializer(queries.read_model_states(), many=True).data)
