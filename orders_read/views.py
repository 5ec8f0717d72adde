"""The staff's read pages, each from the read models (an order's history from the
event log's own view, always fresh).

A page given a consistency token (``?consistency=`` from a form's redirect, or the
``X-Consistency-Token`` header) waits until its views show that write, and says so
when they still do not; every page answers ``X-Read-Model-Refreshed-At``.
"""

from __future__ import annotations

import functools

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import DEFAULT_DB_ALIAS
from django.db.models import BooleanField, ExpressionWrapper, F, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from config.http.restframework import CountedPaginator
from orders_read import charts, exports, queries, refresh, replicas
from orders_read.filters import ORDER_ORDERINGS, STATUSES
from orders_read.freshness import InvalidToken
from orders_read.read_models import READ_MODELS
from orders_write.domain import SUBMITTED

PAGE_SIZE = 25
# The stock page's products a page, each with its batches.
STOCK_PAGE_SIZE = 25
# ``/stock/?sku=<SKU>`` opens the page that holds that SKU (where the batch forms send
# the clerk back, to the row ``#sku-<SKU>``); not a filter.
STOCK_LANDING = "sku"


def _token(request: HttpRequest) -> str | None:
    return request.GET.get("consistency") or request.headers.get("X-Consistency-Token")


def _list_filters(request: HttpRequest, *ignored: str) -> dict[str, str]:
    """A list's filters from the query string: every non-empty value but the page, the
    consistency token a form's redirect carries and the ``ignored`` names."""
    return {
        name: value
        for name, value in request.GET.items()
        if name not in ("page", "consistency", *ignored) and value
    }


def _filters_refused(request: HttpRequest, error: queries.InvalidFilters) -> HttpResponse:
    context = {"message": "These filters cannot be applied.", "errors": error.errors}
    return render(request, "orders_read/problem.html", context, status=400)


def _query_without(request: HttpRequest, *names: str) -> str:
    """The request's query string without ``names``: a list's filters, for its links."""
    query = request.GET.copy()
    for name in names:
        query.pop(name, None)
    return query.urlencode()


def render_read_page(
    request: HttpRequest, selector: str, template: str, build_context, *, on_replica=True
) -> HttpResponse:
    """Wait for the request's token, build the context, render, add freshness headers;
    on a replica when one is healthy (``replicas``) unless ``on_replica`` is false."""
    render_page = functools.partial(_render_read_page, request, selector, template, build_context)
    return replicas.answer(render_page) if on_replica else replicas.on_primary(render_page)


def _render_read_page(
    request: HttpRequest, selector: str, template: str, build_context
) -> HttpResponse:
    try:
        freshness = queries.freshness(selector, _token(request))
    except InvalidToken as error:
        return render(request, "orders_read/problem.html", {"message": error.message}, status=400)
    try:
        response = render(request, template, {**build_context(), "freshness": freshness})
    except Http404 as missing:
        if not freshness.stale:
            raise
        # Not there yet, rather than not there: the write asked for is still on its way.
        context = {"message": f"{missing} Reload in a moment.", "freshness": freshness}
        response = render(request, "orders_read/problem.html", context, status=404)
    for name, value in freshness.headers().items():
        response[name] = value
    return response


@permission_required("orders_read.view_ordersummary", raise_exception=True)
def order_list(request: HttpRequest) -> HttpResponse:
    filters = _list_filters(request)
    try:
        queries.orders(filters=filters)  # refused before waiting for a token
    except queries.InvalidFilters as error:
        return _filters_refused(request, error)

    def context():
        matching = queries.order_count(filters=filters)
        # The page first (the nearest one for a number out of range), then its orders,
        # read as fits how many match and how deep the page is.
        number = (
            CountedPaginator([], PAGE_SIZE, count=lambda: matching)
            .get_page(request.GET.get("page"))
            .number
        )
        orders = queries.orders(filters=filters, matching=matching, reach=number * PAGE_SIZE)
        page = CountedPaginator(orders, PAGE_SIZE, count=lambda: matching).page(number)
        page.object_list = queries.with_stock_expected(list(page.object_list))
        return {
            "page": page,
            "filters": filters,
            "query": _query_without(request, "page", "consistency"),
            "statuses": STATUSES,
            "orderings": [
                (f"{prefix}{column}", f"{label} {arrow}")
                for column, label in ORDER_ORDERINGS.items()
                for prefix, arrow in (("-", "↓"), ("", "↑"))
            ],
        }

    return render_read_page(request, "orders", "orders_read/order_list.html", context)


@permission_required(
    ["orders_read.view_ordersummary", "orders_read.view_orderlinerow"], raise_exception=True
)
def order_detail(request: HttpRequest, reference: str) -> HttpResponse:
    def context():
        order = queries.order(reference)
        if order is None:
            raise Http404(f"No order {reference} (yet).")
        queries.with_stock_expected([order])
        return {
            "order": order,
            "lines": queries.order_lines(reference),
            "history": queries.order_history(reference) or [],
        }

    return render_read_page(request, "order", "orders_read/order_detail.html", context)


def _landing_sku(request: HttpRequest) -> str:
    """The SKU whose page the stock page opens on (``STOCK_LANDING``), checked like a
    SKU; empty for none."""
    field = forms.CharField(max_length=255, required=False)
    try:
        return field.clean(request.GET.get(STOCK_LANDING, ""))
    except ValidationError as error:
        raise queries.InvalidFilters({STOCK_LANDING: list(error.messages)}) from None


@permission_required(
    ["orders_read.view_productavailability", "orders_read.view_batchavailability"],
    raise_exception=True,
)
def stock(request: HttpRequest) -> HttpResponse:
    filters = _list_filters(request, STOCK_LANDING)
    try:
        products = queries.stock_products(filters=filters)
        landing = _landing_sku(request)
    except queries.InvalidFilters as error:
        return _filters_refused(request, error)

    def context():
        number = request.GET.get("page")
        if landing and not number:
            before = queries.stock_products_before(landing, filters=filters)
            number = before // STOCK_PAGE_SIZE + 1
        page = Paginator(products, STOCK_PAGE_SIZE).get_page(number)
        shown = list(page.object_list)
        batches: dict[str, list] = {}
        for batch in queries.batches().filter(sku__in=[product.sku for product in shown]):
            batches.setdefault(batch.sku, []).append(batch)
        page.object_list = [(product, batches.get(product.sku, [])) for product in shown]
        return {
            "page": page,
            "filters": filters,
            "query": _query_without(request, "page", "consistency", STOCK_LANDING),
        }

    return render_read_page(request, "stock", "orders_read/stock.html", context)


def _export(
    request: HttpRequest, selector: str, queryset, columns, text, filename: str
) -> HttpResponse:
    """Stream ``queryset`` as CSV once its read models show the request's token."""
    try:
        freshness = queries.freshness(selector, _token(request))
    except InvalidToken as error:
        return render(request, "orders_read/problem.html", {"message": error.message}, status=400)
    response = exports.streamed_csv(queryset, columns, text, filename)
    # Streamed for seconds: on a replica, replay would cancel it (recovery conflict).
    response[replicas.SOURCE_HEADER] = replicas.source_name(DEFAULT_DB_ALIAS)
    for name, value in freshness.headers().items():
        response[name] = value
    return response


@permission_required("orders_read.view_ordersummary", raise_exception=True)
def orders_csv(request: HttpRequest) -> HttpResponse:
    """The orders list as CSV, with the list's filters and order, every page of it."""
    try:
        orders = queries.orders(filters=_list_filters(request))
    except queries.InvalidFilters as error:
        return _filters_refused(request, error)
    waiting = Q(status=SUBMITTED, allocated_line_count__lt=F("line_count"))
    orders = orders.annotate(
        waiting_for_stock=ExpressionWrapper(waiting, output_field=BooleanField())
    )
    columns = [*exports.ORDER_COLUMNS, ("waiting_for_stock", "waiting_for_stock")]
    return _export(request, "orders_export", orders, columns, exports.ORDER_TEXT, "orders.csv")


@permission_required("orders_read.view_productavailability", raise_exception=True)
def stock_csv(request: HttpRequest) -> HttpResponse:
    """The stock list as CSV, with the stock page's filters."""
    try:
        products = queries.stock_products(filters=_list_filters(request))
    except queries.InvalidFilters as error:
        return _filters_refused(request, error)
    return _export(
        request, "stock_export", products, exports.STOCK_COLUMNS, exports.STOCK_TEXT, "stock.csv"
    )


@permission_required(
    [
        "orders_read.view_lineday",
        "orders_read.view_waitingline",
        "orders_read.view_productavailability",
    ],
    raise_exception=True,
)
def dashboard(request: HttpRequest) -> HttpResponse:
    def context():
        board = queries.dashboard()
        days = [f"{day.day.day} {day.day:%b}" for day in board.days]
        return {
            "board": board,
            "recent_days": queries.RECENT_DAYS,
            "daily_chart": charts.grouped_columns(
                days,
                [
                    ("ordered", [day.ordered for day in board.days]),
                    ("allocated", [day.allocated for day in board.days]),
                ],
            ),
            "top_chart": charts.horizontal_bars(
                [(product.sku, product.ordered) for product in board.top_products],
                unit="units ordered",
            ),
            "waiting_chart": charts.horizontal_bars(
                [(sku, units) for sku, _, units in board.waiting_by_product],
                unit="units waiting",
            ),
        }

    return render_read_page(request, "dashboard", "orders_read/dashboard.html", context)


def _read_models_context() -> dict[str, object]:
    watchers = queries.watchers()
    seen_replicas = queries.replicas_state()
    return {
        "states": queries.read_model_states(watchers, seen_replicas),
        "watchers": watchers,
        "replicas": seen_replicas,
        "async_mode": settings.READ_MODEL_REFRESH == "async",
    }


@permission_required("orders_read.view_refreshstate", raise_exception=True)
def read_models(request: HttpRequest) -> HttpResponse:
    return render_read_page(
        request,
        "read_models",
        "orders_read/read_models.html",
        _read_models_context,
        on_replica=False,  # the primary's own state, with each replica's beside it
    )


@require_POST
@permission_required("orders_read.view_refreshstate", raise_exception=True)
def refresh_read_models(request: HttpRequest) -> HttpResponse:
    outcomes = refresh.refresh(READ_MODELS)
    failed = [outcome for outcome in outcomes if outcome.error]
    if failed:
        for outcome in failed:
            messages.error(request, str(outcome))
    else:
        messages.success(request, f"Refreshed {len(outcomes)} read models.")
    response = redirect("read-models")
    response.status_code = 303  # Post/Redirect/Get
    return response
