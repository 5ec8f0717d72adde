"""The write tables in the admin. Every change goes through a service: the admin's
forms build a command, and a refused command shows its rule's message on the form."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse

from orders_write import commands, domain, services
from orders_write.forms import show_refusal
from orders_write.models import Allocation, Batch, Event, Order, OrderLine, Product


class CommandForm(forms.ModelForm):
    """A model form that saves by running a command (``command``) while it validates,
    so that the command's refusal becomes a form error and nothing is written."""

    def command(self, data: dict) -> commands.Command | None:
        """The command this form's input asks for (None: nothing to change)."""
        return None

    def saved(self) -> object:
        """The row as the command left it."""
        return self.instance

    def clean(self):
        data = super().clean()
        command = None if self.errors else self.command(data)
        if command is not None:
            try:
                self.result = services.handle(command)
            except domain.DomainError as error:
                show_refusal(error, self)
        return data

    def _post_clean(self):
        # The model's own validation would re-check, against the rows the command has
        # just written, what the command already judged (say, "reference is unique").
        pass

    def save(self, commit=True):
        self.save_m2m = lambda: None
        return self.saved()


class CommandAdmin(admin.ModelAdmin):
    """Saves through the form's command; rows are never deleted (no command does)."""

    def save_model(self, request, obj, form, change) -> None:
        pass  # the form's command has written it

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ProductAddForm(CommandForm):
    class Meta:
        model = Product
        fields = ["sku", "name", "price"]

    def command(self, data):
        return commands.CreateProduct(sku=data["sku"], name=data["name"], price=data["price"])

    def saved(self):
        return Product.objects.get(sku=self.cleaned_data["sku"])


class ReadOnlyForm(CommandForm):
    class Meta:
        fields: list[str] = []


@admin.register(Product)
class ProductAdmin(CommandAdmin):
    list_display = ["sku", "name", "price", "version"]
    search_fields = ["sku", "name"]
    readonly_fields = ["sku", "name", "price", "version"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = ReadOnlyForm if obj else ProductAddForm
        return super().get_form(request, obj, change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        # No command changes a product once made: it is read-only after adding.
        return self.readonly_fields if obj else []


class BatchAddForm(CommandForm):
    sku = forms.CharField(label="SKU", max_length=255, help_text="A new SKU creates its product.")

    class Meta:
        model = Batch
        fields = ["reference", "purchased_quantity", "eta"]

    def command(self, data):
        return commands.CreateBatch(
            ref=data["reference"], sku=data["sku"], qty=data["purchased_quantity"], eta=data["eta"]
        )

    def saved(self):
        return Batch.objects.get(reference=self.cleaned_data["reference"])


class BatchQuantityForm(CommandForm):
    class Meta:
        model = Batch
        fields = ["purchased_quantity"]

    def command(self, data):
        if data["purchased_quantity"] == self.initial["purchased_quantity"]:
            return None
        return commands.ChangeBatchQuantity(
            ref=self.instance.reference, qty=data["purchased_quantity"]
        )

    def saved(self):
        return Batch.objects.get(pk=self.instance.pk)


@admin.register(Batch)
class BatchAdmin(CommandAdmin):
    list_display = ["reference", "product", "purchased_quantity", "eta"]
    list_select_related = ["product"]
    search_fields = ["reference", "product__sku"]
    list_filter = [("eta", admin.EmptyFieldListFilter)]

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = BatchQuantityForm if obj else BatchAddForm
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["reference", "sku", "purchased_quantity", "eta"]
        return ["reference", "product", "purchased_quantity", "eta"]

    def get_readonly_fields(self, request, obj=None):
        # The quantity changes through ChangeBatchQuantity, which reallocates.
        return ["reference", "product", "eta"] if obj else []


class OrderLineForm(CommandForm):
    """An order's line in the admin: a new row runs AddLine, a changed quantity
    ChangeLineQuantity, a row marked for deletion RemoveLine."""

    class Meta:
        model = OrderLine
        fields = ["product", "quantity"]

    def command(self, data):
        reference = self.instance.order.reference
        if self.instance.pk is None:
            return commands.AddLine(reference, data["product"].sku, data["quantity"])
        if data.get("DELETE"):
            return commands.RemoveLine(reference, self.instance.product_id)
        if "product" in self.changed_data:
            # No command moves a line to another SKU.
            self.add_error("product", "Remove the line and add another to change its SKU.")
            return None
        if "quantity" in self.changed_data:
            return commands.ChangeLineQuantity(
                reference, self.instance.product_id, data["quantity"]
            )
        return None


class OrderLineFormSet(forms.BaseInlineFormSet):
    def _should_delete_form(self, form) -> bool:
        # A formset ignores the errors of a row marked for deletion: a refused RemoveLine
        # would pass unseen. Such a row is kept, with its refusal beside it.
        return super()._should_delete_form(form) and not form.errors


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    form = OrderLineForm
    formset = OrderLineFormSet
    fields = ["product", "quantity", "unit_price", "batch"]
    readonly_fields = ["unit_price", "batch"]
    autocomplete_fields = ["product"]
    extra = 0

    def _may_change_lines(self, request, order: Order | None) -> bool:
        return (
            order is not None
            and order.status != Order.Status.CANCELLED
            and request.user.has_perm("orders_write.change_order")
        )

    def has_add_permission(self, request, obj=None) -> bool:
        return self._may_change_lines(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return self._may_change_lines(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self._may_change_lines(request, obj)

    @admin.display(description="batch")
    def batch(self, line: OrderLine) -> str:
        allocation = Allocation.objects.filter(line=line).select_related("batch").first()
        return allocation.batch.reference if allocation else "—"


def _run_for_each(modeladmin, request, command_for, objects, done: str) -> None:
    """Run a command per selected row; report what was done and what was refused."""
    succeeded = 0
    for obj in objects:
        try:
            services.handle(command_for(obj))
        except domain.DomainError as error:
            # Worded so that the admin's capitalising the first letter changes no reference.
            modeladmin.message_user(request, f"Refused for {obj}: {error.message}", messages.ERROR)
        else:
            succeeded += 1
    if succeeded:
        modeladmin.message_user(request, f"{succeeded} {done}.", messages.SUCCESS)


def _confirm_release(
    modeladmin, request, queryset: QuerySet, releases: QuerySet[Allocation], question: str
) -> TemplateResponse | None:
    """Unless this POST confirms it, a page that asks, listing the stock the action
    releases (like the admin's own delete confirmation); None once confirmed."""
    if request.POST.get("confirmed") == "yes":
        return None
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": "Are you sure?",
        "question": question,
        "opts": modeladmin.model._meta,
        "queryset": queryset,
        "action": request.POST.get("action"),
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "releases": releases.order_by("line__order__reference", "line__product_id").values_list(
            "line__order__reference", "line__product_id", "line__quantity", "batch__reference"
        ),
    }
    return TemplateResponse(request, "admin/orders_write/confirm_release.html", context)


@admin.register(Order)
class OrderAdmin(CommandAdmin):
    form = ReadOnlyForm
    list_display = ["reference", "customer_name", "status", "created_at"]
    list_filter = ["status"]
    search_fields = ["reference", "customer_name"]
    date_hierarchy = "created_at"
    readonly_fields = ["reference", "customer_name", "shipping_address", "status", "created_at"]
    inlines = [OrderLineInline]
    actions = ["submit_orders", "cancel_orders"]

    def has_add_permission(self, request) -> bool:
        return False  # orders are placed on the staff page, with their lines

    def _changeform_view(self, request, object_id, form_url, extra_context):
        response = super()._changeform_view(request, object_id, form_url, extra_context)
        if request.method == "POST" and not isinstance(response, HttpResponseRedirect):
            # The lines' forms ran their commands as they were validated; when any form
            # was refused, the page shows it and the others' commands are undone too, so
            # that a save is all or nothing (the admin runs in one transaction).
            transaction.set_rollback(True)
        return response

    def save_formset(self, request, form, formset, change) -> None:
        # The lines' commands have written them; nothing is left to save. The admin's
        # change message reads these.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    @admin.action(description="Submit the selected orders", permissions=["change"])
    def submit_orders(self, request, queryset: QuerySet[Order]) -> None:
        _run_for_each(
            self,
            request,
            lambda order: commands.SubmitOrder(order.reference),
            queryset,
            domain.SUBMITTED,
        )

    @admin.action(description="Cancel the selected orders…", permissions=["change"])
    def cancel_orders(self, request, queryset: QuerySet[Order]) -> TemplateResponse | None:
        question = f"Cancel {queryset.count()} order(s)?"
        releases = Allocation.objects.filter(line__order__in=queryset)
        asking = _confirm_release(self, request, queryset, releases, question)
        if asking:
            return asking
        _run_for_each(
            self,
            request,
            lambda order: commands.CancelOrder(order.reference),
            queryset,
            domain.CANCELLED,
        )


@admin.register(Allocation)
class AllocationAdmin(CommandAdmin):
    form = ReadOnlyForm
    list_display = ["line", "batch", "allocated_at"]
    list_select_related = ["line__order", "batch"]
    search_fields = ["line__order__reference", "batch__reference", "line__product__sku"]
    readonly_fields = ["line", "batch", "allocated_at"]
    actions = ["deallocate"]

    def has_add_permission(self, request) -> bool:
        return False  # allocating is a command with its own page

    @admin.action(description="Deallocate the selected lines…", permissions=["delete_allocation"])
    def deallocate(self, request, queryset: QuerySet[Allocation]) -> TemplateResponse | None:
        question = f"Deallocate {queryset.count()} line(s)?"
        asking = _confirm_release(self, request, queryset, queryset, question)
        if asking:
            return asking
        _run_for_each(
            self,
            request,
            lambda allocation: commands.Deallocate(
                allocation.line.order.reference, allocation.line.product_id
            ),
            queryset.select_related("line__order"),
            "deallocated",
        )

    def has_delete_allocation_permission(self, request) -> bool:
        return request.user.has_perm("orders_write.delete_allocation")


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "order_reference", "actor", "payload", "recorded_at"]
    list_filter = ["name"]
    search_fields = ["name", "payload", "=actor"]
    date_hierarchy = "recorded_at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
