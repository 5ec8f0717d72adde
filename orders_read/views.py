"""The staff's read pages, each from the read models only.

A page given a consistency token (``?consistency=`` from a form's redirect, or the
``X-Consistency-Token`` header) waits until its views show that write, and says so
when they still do not; every page answers ``X-Read-Model-Refreshed-At``.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from orders_read import queries, refresh
from orders_read.filters import ORDER_ORDERINGS, STATUSES
from orders_read.freshness import InvalidToken
from orders_read.read_models import READ_MODELS

PAGE_SIZE = 25


def _token(request: HttpRequest) -> str | None:
    return request.GET.get("consistency") or request.headers.get("X-Consistency-Token")


def render_read_page(
    request: HttpRequest, selector: str, template: str, build_context
) -> HttpResponse:
    """Wait for the request's token, build the context, render, add freshness headers."""
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
    filters = {name: value for name, value in request.GET.items() if name != "page" and value}
    try:
        orders = queries.orders(filters=filters)
    except queries.InvalidFilters as error:
        context = {"message": "These filters cannot be applied.", "errors": error.errors}
        return render(request, "orders_read/problem.html", context, status=400)

    def context():
        page = Paginator(orders, PAGE_SIZE).get_page(request.GET.get("page"))
        page.object_list = queries.with_stock_expected(list(page.object_list))
        query = request.GET.copy()
        query.pop("page", None)
        query.pop("consistency", None)
        return {
            "page": page,
            "filters": filters,
            "query": query.urlencode(),
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


@permission_required(
    ["orders_read.view_productavailability", "orders_read.view_batchavailability"],
    raise_exception=True,
)
def stock(request: HttpRequest) -> HttpResponse:
    def context():
        batches: dict[str, list] = {}
        for batch in queries.batches():
            batches.setdefault(batch.sku, []).append(batch)
        products = [(product, batches.get(product.sku, [])) for product in queries.products()]
        return {"products": products}

    return render_read_page(request, "stock", "orders_read/stock.html", context)


def _read_models_context() -> dict[str, object]:
    watchers = queries.watchers()
    return {
        "states": queries.read_model_states(watchers),
        "watchers": watchers,
        "async_mode": settings.READ_MODEL_REFRESH == "async",
    }


@permission_required("orders_read.view_refreshstate", raise_exception=True)
def read_models(request: HttpRequest) -> HttpResponse:
    return render_read_page(
        request,
        "read_models",
        "orders_read/read_models.html",
        _read_models_context,
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
