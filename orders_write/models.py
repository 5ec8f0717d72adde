"""The normalized write tables: data and the constraints that guard it, no workflows.

Change them only through ``orders_write.services``.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.db.models.expressions import RawSQL

from orders_write import domain


class Product(models.Model):
    """The consistency boundary: every change to a product's allocations locks this row."""

    sku = models.CharField("SKU", max_length=domain.MAX_TEXT_LENGTH, primary_key=True)
    name = models.CharField(max_length=domain.MAX_TEXT_LENGTH)
    price = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    version = models.PositiveIntegerField(
        default=0, help_text="Grows by one with every change to the product's allocations."
    )

    class Meta:
        ordering = ["sku"]
        constraints = [
            models.CheckConstraint(condition=~Q(sku__regex=r"^\s*$"), name="product_sku_not_blank"),
            models.CheckConstraint(condition=Q(price__gte=0), name="product_price_not_negative"),
        ]

    def __str__(self) -> str:
        return self.sku


class Batch(models.Model):
    reference = models.CharField(max_length=domain.MAX_TEXT_LENGTH, unique=True)
    product = models.ForeignKey(
        Product, on_delete=models.PROTECT, related_name="batches", db_column="sku"
    )
    purchased_quantity = models.IntegerField()
    eta = models.DateField(
        "ETA", null=True, blank=True, help_text="Empty when the stock is in the warehouse."
    )
    # The quantities of the lines allocated to it, kept by the services under the
    # product's lock, so that allocating need not sum every allocation of the SKU.
    allocated_quantity = models.IntegerField(
        default=0, editable=False, help_text="Sum of the quantities of its allocated lines."
    )

    class Meta:
        ordering = ["reference"]
        verbose_name_plural = "batches"
        constraints = [
            models.CheckConstraint(
                condition=Q(allocated_quantity__gte=0), name="batch_allocated_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(purchased_quantity__gt=0), name="batch_quantity_positive"
            ),
            models.CheckConstraint(
                condition=~Q(reference__regex=r"^\s*$"), name="batch_reference_not_blank"
            ),
        ]

    def __str__(self) -> str:
        return self.reference


class Order(models.Model):
    class Status(models.TextChoices):
        PENDING = domain.PENDING, domain.STATUS_LABELS[domain.PENDING]
        SUBMITTED = domain.SUBMITTED, domain.STATUS_LABELS[domain.SUBMITTED]
        CANCELLED = domain.CANCELLED, domain.STATUS_LABELS[domain.CANCELLED]

    reference = models.CharField(max_length=domain.MAX_TEXT_LENGTH, unique=True)
    customer_name = models.CharField(max_length=domain.MAX_TEXT_LENGTH, blank=True)
    shipping_address = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # When it was submitted: its waiting lines are filled in this order (rule 10).
    submitted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=list(domain.STATUS_LABELS)),
                name="order_status_known",
            ),
            models.CheckConstraint(
                condition=~Q(reference__regex=r"^\s*$"), name="order_reference_not_blank"
            ),
        ]

    def __str__(self) -> str:
        return self.reference


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(
        Product, on_delete=models.PROTECT, related_name="order_lines", db_column="sku"
    )
    quantity = models.IntegerField()
    unit_price = models.DecimalField(max_digits=12, decimal_places=2)

    class Meta:
        ordering = ["order", "product"]
        constraints = [
            models.UniqueConstraint(fields=["order", "product"], name="one_line_per_sku_per_order"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="line_quantity_positive"),
            models.CheckConstraint(
                condition=Q(unit_price__gte=0), name="line_unit_price_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.order_id}: {self.quantity} x {self.product_id}"


class Allocation(models.Model):
    """An order line held by exactly one batch."""

    line = models.OneToOneField(OrderLine, on_delete=models.CASCADE, related_name="allocation")
    batch = models.ForeignKey(Batch, on_delete=models.PROTECT, related_name="allocations")
    allocated_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.line} -> {self.batch}"


class Event(models.Model):
    """The audit trail: every accepted command's domain events, in order."""

    name = models.CharField(max_length=64)  # indexed below, without a LIKE index
    payload = models.JSONField()
    transaction_id = models.BigIntegerField(
        db_index=True,
        # Set by the database, and returned by the INSERT that records the events.
        db_default=RawSQL("pg_current_xact_id()::text::bigint", []),
        help_text="pg_current_xact_id() of the command that recorded it.",
    )
    recorded_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.CharField(
        max_length=150,  # a username's
        default="system",
        db_default="system",
        help_text="The user or integration whose request issued the command; "
        "system for operators' commands.",
    )
    order_reference = models.CharField(  # noqa: DJ001 (NULL: about no order)
        max_length=domain.MAX_TEXT_LENGTH,
        null=True,
        blank=True,
        # Compared byte by byte: an equal reference is found alike, and its index is
        # built several times faster after a bulk load than under the locale's rules.
        db_collation="C",
        help_text="The order it concerns (its reference or orderid), if any.",
    )

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["name"], name="event_name"),
            # An order's history, oldest first, at millions of events.
            models.Index(
                fields=["order_reference", "id"],
                name="event_order_history",
                condition=Q(order_reference__isnull=False),
            ),
            # Why a line was allocated or released: the batch events of its transaction.
            models.Index(
                fields=["transaction_id"],
                name="event_batch_changes",
                # Not name IN (...): PostgreSQL gives that back in another form, which
                # a bulk load that drops and rebuilds the indexes would not reproduce.
                condition=Q(name="BatchCreated") | Q(name="BatchQuantityChanged"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.payload}"
