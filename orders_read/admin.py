"""The read models in the admin: listed, searched and filtered, never edited; an action
refreshes them."""

from __future__ import annotations

from django.contrib import admin, messages

from orders_read import queries, read_models, rebuilds, refresh
from orders_read.models import (
    AllocationRow,
    BaseState,
    BatchAvailability,
    LineDay,
    OrderLineRow,
    OrderSummary,
    ProductAvailability,
    RefreshState,
    WaitingLine,
    WatcherState,
)
from orders_read.read_models import READ_MODELS


def _report(modeladmin, request, outcomes: list[refresh.RefreshOutcome]) -> None:
    for outcome in outcomes:
        level = messages.ERROR if outcome.error else messages.SUCCESS
        # Not starting with the unit's name: the admin capitalises a message's first letter.
        modeladmin.message_user(request, f"Read model {outcome}", level)


class ReadModelAdmin(admin.ModelAdmin):
    """Read-only: rows change only when their view is refreshed from the write tables."""

    actions = ["refresh_read_model"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Refresh this read model now (select any row)")
    def refresh_read_model(self, request, queryset) -> None:
        units = read_models.named([self.model._meta.db_table])
        _report(self, request, refresh.refresh(units))


@admin.register(AllocationRow)
class AllocationRowAdmin(ReadModelAdmin):
    list_display = ["orderid", "sku", "qty", "batchref"]
    search_fields = ["orderid", "sku", "batchref"]


@admin.register(OrderSummary)
class OrderSummaryAdmin(ReadModelAdmin):
    list_display = [
        "reference",
        "customer_name",
        "status",
        "line_count",
        "allocated_line_count",
        "total_quantity",
        "total_amount",
        "created_at",
    ]
    list_filter = ["status"]
    search_fields = ["reference", "customer_name"]
    date_hierarchy = "created_at"


@admin.register(OrderLineRow)
class OrderLineRowAdmin(ReadModelAdmin):
    list_display = ["orderid", "sku", "qty", "unit_price", "amount", "batchref"]
    list_filter = [("batchref", admin.EmptyFieldListFilter)]
    search_fields = ["orderid", "sku", "batchref"]


@admin.register(ProductAvailability)
class ProductAvailabilityAdmin(ReadModelAdmin):
    list_display = [
        "sku",
        "name",
        "price",
        "purchased",
        "allocated",
        "available",
        "available_now",
        "next_eta",
    ]
    search_fields = ["sku", "name"]


@admin.register(BatchAvailability)
class BatchAvailabilityAdmin(ReadModelAdmin):
    list_display = ["batchref", "sku", "eta", "purchased", "allocated", "available"]
    list_filter = [("eta", admin.EmptyFieldListFilter)]
    search_fields = ["batchref", "sku"]


@admin.register(LineDay)
class LineDayAdmin(ReadModelAdmin):
    list_display = ["line_id", "sku", "qty", "ordered_on", "allocated_on"]
    list_filter = [("allocated_on", admin.EmptyFieldListFilter)]
    search_fields = ["sku"]
    date_hierarchy = "ordered_on"


@admin.register(WaitingLine)
class WaitingLineAdmin(ReadModelAdmin):
    list_display = ["orderid", "sku", "qty"]
    search_fields = ["orderid", "sku"]


@admin.register(RefreshState)
class RefreshStateAdmin(ReadModelAdmin):
    list_display = [
        "unit",
        "last_refreshed_at",
        "last_duration_ms",
        "row_count",
        "refresh_count",
        "delta_row_count",
        "dirty",
        "last_error",
        "last_error_at",
    ]
    list_filter = ["dirty"]
    actions = ["refresh_selected", "compact_selected", "rebuild_selected"]

    @admin.action(description="Refresh the selected read models")
    def refresh_selected(self, request, queryset) -> None:
        units = [state.unit for state in queryset if state.unit in READ_MODELS]
        _report(self, request, refresh.refresh(units))

    @admin.action(description="Fold the selected read models' deltas into their bases")
    def compact_selected(self, request, queryset) -> None:
        units = [state.unit for state in queryset if state.unit in READ_MODELS]
        rebuilds.request_compaction(units)
        names = ", ".join(units)
        if any(watcher["running"] for watcher in queries.watchers()):
            self.message_user(
                request,
                f"The watcher folds the deltas of {names} into their bases in the background,"
                " within a second or two; the read-models page shows when each base was rebuilt.",
                messages.SUCCESS,
            )
        else:
            self.message_user(
                request,
                f"Asked for {names} to be folded into their bases, but no watcher is running"
                " to do it: start `manage.py refresh_views --watch` (make run does), or run"
                " `manage.py refresh_views --compact`.",
                messages.WARNING,
            )

    @admin.action(description="Rebuild the selected read models from scratch (readers wait)")
    def rebuild_selected(self, request, queryset) -> None:
        units = [state.unit for state in queryset if state.unit in READ_MODELS]
        _report(self, request, rebuilds.rebuild(units))


@admin.register(BaseState)
class BaseStateAdmin(ReadModelAdmin):
    list_display = ["unit", "rebuilt_at", "duration_ms", "row_count", "rebuild_count", "snapshot"]
    actions = []


@admin.register(WatcherState)
class WatcherStateAdmin(ReadModelAdmin):
    """Each watcher writes its own row; the read-models page says which are silent."""

    list_display = ["name", "units", "started_at", "heartbeat_at"]
    actions = []
