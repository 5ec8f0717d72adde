"""Read models: unmanaged, read-only models over the materialized views, and refresh state.

The views themselves are created by this app's migrations (RunSQL); Django never
creates, alters or writes them.
"""

from __future__ import annotations

from django.db import models

from orders_write import domain


class ReadModel(models.Model):
    """A row of a materialized view: never saved or deleted from Python."""

    class Meta:
        abstract = True
        managed = False

    def save(self, *args, **kwargs):
        raise TypeError(f"{type(self).__name__} is a read model; change data through commands.")

    def delete(self, *args, **kwargs):
        raise TypeError(f"{type(self).__name__} is a read model; change data through commands.")


class AllocationRow(ReadModel):
    line_id = models.BigIntegerField(primary_key=True)
    order_id = models.BigIntegerField()
    orderid = models.CharField("order", max_length=255)
    sku = models.CharField("SKU", max_length=255)
    qty = models.IntegerField("quantity")
    batchref = models.CharField("batch", max_length=255)

    class Meta(ReadModel.Meta):
        db_table = "allocations_view"
        ordering = ["orderid", "sku"]
        verbose_name = "allocation"

    def __str__(self) -> str:
        return f"{self.orderid} {self.sku} -> {self.batchref}"


class OrderSummary(ReadModel):
    id = models.BigIntegerField(primary_key=True)
    reference = models.CharField(max_length=255)
    customer_name = models.CharField(max_length=255)
    shipping_address = models.TextField()
    status = models.CharField(max_length=16)
    line_count = models.IntegerField()
    total_quantity = models.BigIntegerField()
    total_amount = models.DecimalField(max_digits=25, decimal_places=2)
    allocated_line_count = models.IntegerField()
    created_at = models.DateTimeField()

    class Meta(ReadModel.Meta):
        db_table = "order_summary"
        ordering = ["-created_at", "-id"]
        verbose_name = "order summary"
        verbose_name_plural = "order summaries"

    def __str__(self) -> str:
        return self.reference

    # The pages ask these rather than spelling the statuses out.
    @property
    def is_pending(self) -> bool:
        return self.status == domain.PENDING

    @property
    def is_submitted(self) -> bool:
        return self.status == domain.SUBMITTED

    @property
    def is_waiting(self) -> bool:
        return self.waiting(self.status, self.line_count, self.allocated_line_count)

    @staticmethod
    def waiting(status: str, line_count: int, allocated_line_count: int) -> bool:
        """Submitted with a line that found no stock yet: waiting for stock to arrive.
        (For a summary read as plain values rather than as a model.)"""
        return status == domain.SUBMITTED and allocated_line_count < line_count

    @property
    def is_cancelled(self) -> bool:
        return self.status == domain.CANCELLED


class OrderLineRow(ReadModel):
    line_id = models.BigIntegerField(primary_key=True)
    order_id = models.BigIntegerField()
    orderid = models.CharField("order", max_length=255)
    sku = models.CharField("SKU", max_length=255)
    product_name = models.CharField(max_length=255)
    qty = models.IntegerField("quantity")
    unit_price = models.DecimalField(max_digits=12, decimal_places=2)
    amount = models.DecimalField(max_digits=22, decimal_places=2)
    batchref = models.CharField("batch", max_length=255, null=True)  # noqa: DJ001 (NULL: unallocated)
    batch_eta = models.DateField("batch ETA", null=True)

    class Meta(ReadModel.Meta):
        db_table = "order_lines_view"
        ordering = ["orderid", "sku"]
        verbose_name = "order line"

    def __str__(self) -> str:
        return f"{self.orderid}: {self.qty} x {self.sku}"


class ProductAvailability(ReadModel):
    sku = models.CharField("SKU", max_length=255, primary_key=True)
    name = models.CharField(max_length=255)
    price = models.DecimalField(max_digits=12, decimal_places=2)
    purchased = models.BigIntegerField()
    allocated = models.BigIntegerField()
    available = models.BigIntegerField()
    available_now = models.BigIntegerField(help_text="Available in the warehouse (no ETA).")
    next_eta = models.DateField(
        "next ETA", null=True, help_text="Earliest ETA of a shipment with stock still available."
    )
    batch_count = models.IntegerField()

    class Meta(ReadModel.Meta):
        db_table = "product_availability"
        ordering = ["sku"]
        verbose_name = "product availability"
        verbose_name_plural = "product availability"

    def __str__(self) -> str:
        return self.sku


class BatchAvailability(ReadModel):
    batch_id = models.BigIntegerField(primary_key=True)
    batchref = models.CharField("batch", max_length=255)
    sku = models.CharField("SKU", max_length=255)
    eta = models.DateField("ETA", null=True)
    purchased = models.IntegerField()
    allocated = models.BigIntegerField()
    available = models.BigIntegerField()

    class Meta(ReadModel.Meta):
        db_table = "batch_availability"
        ordering = ["sku", "batchref"]
        verbose_name = "batch availability"
        verbose_name_plural = "batch availability"

    def __str__(self) -> str:
        return self.batchref


class LineDay(ReadModel):
    """An order line with the days (UTC) it was ordered and allocated, for the dashboard."""

    line_id = models.BigIntegerField(primary_key=True)
    order_id = models.BigIntegerField()
    sku = models.CharField("SKU", max_length=255)
    qty = models.IntegerField("quantity")
    ordered_on = models.DateField(help_text="The day its order was placed.")
    allocated_on = models.DateField(
        null=True, help_text="The day it was allocated, while it holds its stock."
    )

    class Meta(ReadModel.Meta):
        db_table = "line_days"
        ordering = ["-ordered_on", "line_id"]
        verbose_name = "order line by day"
        verbose_name_plural = "order lines by day"

    def __str__(self) -> str:
        return f"{self.ordered_on} {self.qty} x {self.sku}"


class WaitingLine(ReadModel):
    """A line of a submitted order that found no stock yet: it waits for a batch."""

    line_id = models.BigIntegerField(primary_key=True)
    order_id = models.BigIntegerField()
    orderid = models.CharField("order", max_length=255)
    sku = models.CharField("SKU", max_length=255)
    qty = models.IntegerField("quantity")

    class Meta(ReadModel.Meta):
        db_table = "waiting_lines"
        ordering = ["orderid", "sku"]
        verbose_name = "waiting line"

    def __str__(self) -> str:
        return f"{self.orderid}: {self.qty} x {self.sku}"


class RefreshState(models.Model):
    """How fresh one refresh unit (today: one materialized view) is, shared by all processes."""

    unit = models.CharField(max_length=128, primary_key=True)
    dirty = models.BooleanField(
        default=False,
        help_text="A refresh was asked for (by an operator, after a failed refresh, or by a"
        " writer that gave up waiting) and has not started yet.",
    )
    requested_at = models.DateTimeField(null=True, blank=True)
    refresh_count = models.PositiveBigIntegerField(default=0)
    last_refreshed_at = models.DateTimeField(
        null=True, blank=True, help_text="When the snapshot of the last refresh was taken."
    )
    last_duration_ms = models.FloatField(null=True, blank=True)
    row_count = models.BigIntegerField(null=True, blank=True)
    snapshot = models.TextField(
        blank=True, help_text="pg_current_snapshot() the last refresh ran under."
    )
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    delta_row_count = models.BigIntegerField(
        null=True, blank=True, help_text="Rows the last refresh rebuilt (the delta view's)."
    )
    compact_requested_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When someone asked for its delta to be folded into its base; the watcher"
        " does it in the background.",
    )
    value_counts = models.JSONField(
        null=True,
        blank=True,
        help_text="Rows readers see per value of the read model's counted column, as of"
        " the last refresh (valid while row_count is known).",
    )

    class Meta:
        db_table = "read_model_state"
        ordering = ["unit"]
        verbose_name = "read model state"

    def __str__(self) -> str:
        return self.unit


class BaseState(models.Model):
    """The last rebuild of one read model's base view.

    Only a base rebuild writes its row, in the rebuild's own transaction, so that the
    base's rows and the snapshot that says which writes they include change together.
    """

    unit = models.CharField(max_length=128, primary_key=True)
    snapshot = models.TextField(
        blank=True, help_text="pg_current_snapshot() the base was last rebuilt under."
    )
    rebuilt_at = models.DateTimeField(
        null=True, blank=True, help_text="When the snapshot of the last rebuild was taken."
    )
    duration_ms = models.FloatField(null=True, blank=True)
    row_count = models.BigIntegerField(null=True, blank=True)
    rebuild_count = models.PositiveBigIntegerField(default=0)
    value_counts = models.JSONField(
        null=True, blank=True, help_text="The base's rows per value of the counted column."
    )
    value_counts_snapshot = models.TextField(
        blank=True,
        # A base state written by a read model's create_sql (which old migrations call
        # too, before this column existed) starts with counts of no snapshot.
        db_default="",
        help_text="The snapshot of the base that value_counts counted: they hold only while"
        " it is the base's.",
    )

    class Meta:
        db_table = "read_model_base_state"
        ordering = ["unit"]
        verbose_name = "read model base"

    def __str__(self) -> str:
        return self.unit


class WatcherState(models.Model):
    """One running ``refresh_views --watch``: what it keeps fresh and when it last showed
    life. It writes its own row every second; a row whose heartbeat has stopped is a watcher
    that died or is stuck."""

    name = models.CharField(max_length=255, primary_key=True, help_text="host:pid")
    host = models.CharField(max_length=255)
    pid = models.IntegerField("process id")
    units = models.TextField(help_text="The read models it keeps fresh, comma-separated.")
    started_at = models.DateTimeField()
    heartbeat_at = models.DateTimeField("last heartbeat")

    class Meta:
        db_table = "read_model_watcher"
        ordering = ["started_at"]
        verbose_name = "read model watcher"

    def __str__(self) -> str:
        return self.name


class OrderEvent(ReadModel):
    """An event of an order's history: a plain view over the write side's event log, so
    always as fresh as the log. For an allocation, a release or a line out of stock it
    names the event of the same command that caused it (a cancel, a batch received or
    changed, a line edited), if any."""

    id = models.BigIntegerField(primary_key=True)
    reference = models.CharField("order", max_length=255)
    kind = models.CharField(max_length=64)
    payload = models.JSONField()
    actor = models.CharField(max_length=150)
    recorded_at = models.DateTimeField()
    cause_kind = models.CharField(max_length=64, null=True)  # noqa: DJ001 (NULL: no cause)
    cause_payload = models.JSONField(null=True)

    class Meta(ReadModel.Meta):
        db_table = "order_history"
        ordering = ["reference", "id"]
        verbose_name = "order event"

    def __str__(self) -> str:
        return f"{self.reference}: {self.kind}"
