"""The write tables in the admin, for inspection: every change goes through the services."""

from django.contrib import admin

from orders_write.models import Allocation, Batch, Event, Order, OrderLine, Product


class InspectOnly(admin.ModelAdmin):
    """Shows rows without offering edits that would bypass the services' rules."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    fields = ["product", "quantity", "unit_price"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Product)
class ProductAdmin(InspectOnly):
    list_display = ["sku", "name", "price", "version"]
    search_fields = ["sku", "name"]


@admin.register(Batch)
class BatchAdmin(InspectOnly):
    list_display = ["reference", "product", "purchased_quantity", "eta"]
    search_fields = ["reference", "product__sku"]
    list_filter = [("eta", admin.EmptyFieldListFilter)]


@admin.register(Order)
class OrderAdmin(InspectOnly):
    list_display = ["reference", "customer_name", "status", "created_at"]
    list_filter = ["status"]
    search_fields = ["reference", "customer_name"]
    inlines = [OrderLineInline]


@admin.register(Allocation)
class AllocationAdmin(InspectOnly):
    list_display = ["line", "batch", "allocated_at"]
    list_select_related = ["line__order", "batch"]


@admin.register(Event)
class EventAdmin(InspectOnly):
    list_display = ["id", "name", "transaction_id", "recorded_at"]
    list_filter = ["name"]
    search_fields = ["name", "payload"]
