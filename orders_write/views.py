"""The staff's write pages: Post/Redirect/Get forms over the services.

A valid POST runs one command and answers 303 to the read page that shows it, with
the command's consistency token in the URL (``?consistency=``) and the
``X-Consistency-Token`` header, so that page waits for the write. A refused command
answers 200 with the form, the rule's message beside its field, and nothing written.
"""

from __future__ import annotations

import difflib
from urllib.parse import quote, unquote, urlencode

from django.contrib import messages
from django.contrib.auth.mixins import PermissionRequiredMixin
from django.forms import Form
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import Resolver404, resolve, reverse
from django.utils.encoding import escape_uri_path
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.views import View
from django.views.generic import FormView

from orders_write import commands, domain, forms, services
from orders_write.models import Allocation, Batch, Order, Product


class SeeOther(HttpResponseRedirect):
    status_code = 303


# What the read pages a form sends to ask of their user (orders_read.views).
READ_PAGE_PERMISSIONS = {
    "order": ("orders_read.view_ordersummary", "orders_read.view_orderlinerow"),
    "stock": ("orders_read.view_productavailability", "orders_read.view_batchavailability"),
}


def _may_open(request: HttpRequest, url: str) -> bool:
    try:
        name = resolve(unquote(url.partition("#")[0].partition("?")[0])).url_name
    except Resolver404:
        return True
    return request.user.has_perms(READ_PAGE_PERMISSIONS.get(name, ()))


def redirect_after(request: HttpRequest, result: services.CommandResult, url: str) -> SeeOther:
    """303 to the read page that shows the write, carrying its consistency token (before
    any #fragment). A user who may not open that page (a clerk who is no viewer) goes
    back to the form they used instead, where the success message shows too."""
    if not _may_open(request, url):
        url = escape_uri_path(request.path)
    path, hash_mark, fragment = url.partition("#")
    separator = "&" if "?" in path else "?"
    query = urlencode({"consistency": result.consistency_token})
    response = SeeOther(f"{path}{separator}{query}{hash_mark}{fragment}")
    response["X-Consistency-Token"] = result.consistency_token
    return response


def order_url(reference: str) -> str:
    return reverse("order", kwargs={"reference": reference})


class PermissionBeforeLookupMixin(PermissionRequiredMixin):
    """A page of something its URL names (``look_up``): the permission is checked first,
    so that a user without it gets 403 and never learns from a 404 whether it exists."""

    raise_exception = True  # a logged-in user without the permission gets 403

    def look_up(self, **kwargs) -> None:
        """Load what the URL's ``kwargs`` name onto the view; Http404 when it is unknown."""
        raise NotImplementedError

    def dispatch(self, request, *args, **kwargs):
        if not self.has_permission():
            return self.handle_no_permission()
        self.look_up(**kwargs)
        return super().dispatch(request, *args, **kwargs)


class CommandFormView(PermissionRequiredMixin, FormView):
    """One form, one command: build it from the cleaned data, run it, redirect."""

    raise_exception = True  # a logged-in user without the permission gets 403

    def command(self, data: dict) -> commands.Command:
        raise NotImplementedError

    def success(self, result: services.CommandResult, data: dict) -> tuple[str, str]:
        """(message, URL of the read page that shows the result)."""
        raise NotImplementedError

    def post(self, request, *args, **kwargs):
        form = self.get_form()
        if form.is_valid():
            return self.form_valid(form)
        show_rules_refusals(self.command(readable(form)), form)
        return self.form_invalid(form)

    def get_context_data(self, **kwargs):
        return super().get_context_data(known_skus=known_skus(), **kwargs)

    def form_valid(self, form):
        try:
            result = services.handle(self.command(form.cleaned_data))
        except domain.DomainError as error:
            show_refusal(error, form)
            return self.form_invalid(form)
        message, url = self.success(result, form.cleaned_data)
        tell(self.request, result, message)
        return redirect_after(self.request, result, url)


def tell(request: HttpRequest, result: services.CommandResult, message: str) -> None:
    """The command's message: a warning when it left a line without stock."""
    lost = any(outcome.outcome == domain.OUT_OF_STOCK for outcome in result.outcomes)
    messages.add_message(request, messages.WARNING if lost else messages.SUCCESS, message)


# A <datalist> offers the known SKUs, up to this many.
KNOWN_SKUS_SHOWN = 1000


def known_skus() -> list[tuple[str, str]]:
    """(SKU, name) of the products, for the SKU fields' suggestions."""
    return list(Product.objects.order_by("sku").values_list("sku", "name")[:KNOWN_SKUS_SHOWN])


def readable(form: Form) -> dict:
    """A form's values as far as it could read them: None for a field it could not."""
    return {name: form.cleaned_data.get(name) for name in form.fields}


def show_refusal(error: domain.DomainError, form: Form, lines=None) -> None:
    """A refusal beside its field; an unknown SKU close to a known one (a typo) names it."""
    known: list[str] | None = None
    for refusal in domain.each_refusal(error):
        if isinstance(refusal, domain.InvalidSku):
            known = known if known is not None else [sku for sku, _ in known_skus()]
            close = difflib.get_close_matches(refusal.sku, known, n=1, cutoff=0.8)
            if close:
                message = f"{refusal.message}. Did you mean {close[0]}?"
                refusal = domain.InvalidInput(message, field=refusal.field)
        forms.show_refusal(refusal, form, lines)


def show_rules_refusals(command: commands.Command, form: Form, lines=None) -> None:
    """Beside a form's own errors, what the rules refuse of the fields it could read, so
    that every mistake shows at once (rule 11)."""
    for refusal in services.refusals(command):
        show_refusal(refusal, form, lines)


def stock_url(sku: str) -> str:
    """The stock page that holds ``sku`` (``?sku=`` picks the page), at its row."""
    return f"{reverse('stock')}?{urlencode({'sku': sku})}#sku-{quote(sku, safe='')}"


class ReceiveBatchView(CommandFormView):
    permission_required = "orders_write.add_batch"
    form_class = forms.BatchForm
    template_name = "orders_write/batch_form.html"

    def get_context_data(self, **kwargs):
        return super().get_context_data(main_fields=("ref", "sku", "qty", "eta"), **kwargs)

    def command(self, data):
        new_product = (
            commands.NewProduct(name=data["name"], price=data["price"])
            if data["new_product"]
            else None
        )
        return commands.CreateBatch(
            ref=data["ref"],
            sku=data["sku"],
            qty=data["qty"],
            eta=data["eta"],
            new_product=new_product,
            known_sku_only=True,  # a typo must not create a product
        )

    def success(self, result, data):
        message = format_html("Batch {} received: {} x {}.", data["ref"], data["qty"], data["sku"])
        return message + outcomes_told(result), stock_url(data["sku"])


# Lines named one by one in a message; the rest are counted.
LINES_NAMED = 10

_OUTCOME_SENTENCES = {
    "moved": "{qty} x {sku} of order {order} moved from batch {from_batch} to batch {to_batch}.",
    "allocated": "{qty} x {sku} of order {order} allocated from batch {to_batch}.",
    "lost": "{qty} x {sku} of order {order} is now out of stock (it was on batch {from_batch}).",
    "out_of_stock": "{qty} x {sku} of order {order} stays out of stock.",
    "released": "{qty} x {sku} of order {order} released from batch {from_batch}.",
}


def _sentence(outcome: domain.LineOutcome) -> str:
    kind = outcome.outcome
    if kind == domain.ALLOCATED and outcome.from_batch:
        kind = "moved"
    elif kind == domain.OUT_OF_STOCK and outcome.from_batch:
        kind = "lost"
    return format_html(
        _OUTCOME_SENTENCES[kind],
        qty=outcome.qty,
        sku=outcome.sku,
        order=format_html('<a href="{}">{}</a>', order_url(outcome.orderid), outcome.orderid),
        from_batch=outcome.from_batch,
        to_batch=outcome.to_batch,
    )


def outcomes_told(result: services.CommandResult) -> SafeString:
    """Each order line the command moved, with a link to its order: for a message (safe
    HTML, so that a safe message it is added to stays safe)."""
    outcomes = result.outcomes
    if not outcomes:
        return SafeString()
    named = format_html_join("", "<li>{}</li>", ((_sentence(o),) for o in outcomes[:LINES_NAMED]))
    more = len(outcomes) - LINES_NAMED
    rest = format_html("<li>and {} more line(s).</li>", more) if more > 0 else ""
    return format_html(' <ul class="outcomes">{}{}</ul>', named, rest)


class ChangeBatchQuantityView(PermissionBeforeLookupMixin, CommandFormView):
    permission_required = "orders_write.change_batch"
    form_class = forms.BatchQuantityForm
    template_name = "orders_write/batch_quantity_form.html"

    # The batch's lines shown on the form, newest allocation first (released first).
    LINES_SHOWN = 50

    def look_up(self, *, ref: str) -> None:
        self.batch = Batch.objects.filter(reference=ref).first()
        if self.batch is None:
            raise Http404(f"Unknown batch {ref}")

    def get_initial(self):
        return {"qty": self.batch.purchased_quantity}

    def get_context_data(self, **kwargs):
        allocations = self.batch.allocations.select_related("line__order").order_by(
            "-allocated_at", "-id"
        )
        count = allocations.count()
        return super().get_context_data(
            ref=self.kwargs["ref"],
            batch=self.batch,
            available=self.batch.purchased_quantity - self.batch.allocated_quantity,
            held_lines=allocations[: self.LINES_SHOWN],
            held_line_count=count,
            older_line_count=max(0, count - self.LINES_SHOWN),
            **kwargs,
        )

    def command(self, data):
        return commands.ChangeBatchQuantity(ref=self.kwargs["ref"], qty=data["qty"])

    def success(self, result, data):
        message = format_html("Batch {} now holds {}.", self.kwargs["ref"], data["qty"])
        message += outcomes_told(result)
        return message, stock_url(result.events[0].sku)


class AllocateView(CommandFormView):
    permission_required = "orders_write.add_allocation"
    form_class = forms.AllocateForm
    template_name = "orders_write/allocate_form.html"

    def get_initial(self):
        return {name: self.request.GET.get(name, "") for name in ("orderid", "sku")}

    def command(self, data):
        return commands.Allocate(
            orderid=data["orderid"], sku=data["sku"], qty=data["qty"], existing_order_only=True
        )

    def success(self, result, data):
        outcome = result.events[-1] if result.events else None
        if outcome is None:
            message = f"{data['sku']} was already allocated to order {data['orderid']}."
        elif outcome.kind == "OutOfStock":
            message = f"Out of stock: {data['qty']} x {data['sku']} stays unallocated."
        else:
            message = f"Allocated {data['qty']} x {data['sku']} from batch {outcome.batchref}."
        return message, order_url(data["orderid"])


class PlaceOrderView(PermissionRequiredMixin, View):
    """An order and its lines (a formset, prefix ``lines``); "Add a line" needs no script."""

    permission_required = "orders_write.add_order"
    raise_exception = True
    template_name = "orders_write/order_form.html"

    def render_form(self, form, lines, status=200) -> HttpResponse:
        context = {"form": form, "lines": lines, "known_skus": known_skus()}
        return render(self.request, self.template_name, context, status=status)

    def get(self, request: HttpRequest) -> HttpResponse:
        lines = forms.LineFormSet(prefix=forms.LINES_PREFIX)
        return self.render_form(forms.OrderForm(), lines)

    def post(self, request: HttpRequest) -> HttpResponse:
        form = forms.OrderForm(request.POST)
        lines = forms.LineFormSet(request.POST, prefix=forms.LINES_PREFIX)
        if "add_line" in request.POST:
            return self.render_form(form, _with_one_more_line(request.POST, lines))
        valid = all([form.is_valid(), lines.is_valid()])  # both, to show every error
        filled = [line for line in lines.forms if line.has_changed()]
        order, filled_lines = readable(form), [readable(line) for line in filled]
        command = commands.PlaceOrder(
            reference=order["reference"] or None,
            customer=order["customer"],
            shipping_address=order["shipping_address"],
            lines=tuple(commands.OrderLineInput(**line) for line in filled_lines),
        )
        if not valid:
            show_rules_refusals(command, form, filled)
            return self.render_form(form, lines)
        try:
            result = services.place_order(command)
        except domain.DomainError as error:
            show_refusal(error, form, filled)
            return self.render_form(form, lines)
        messages.success(request, f"Order {result.reference} placed.")
        return redirect_after(request, result, order_url(result.reference))


def _with_one_more_line(data, lines) -> forms.LineFormSet:
    """The same formset, bound to the same input, with one empty row more."""
    data = data.copy()
    total = f"{forms.LINES_PREFIX}-TOTAL_FORMS"
    try:
        count = int(data.get(total, 0))
    except ValueError:
        count = len(lines.forms)
    data[total] = str(min(count, forms.LineFormSet.max_num - 1) + 1)
    return forms.LineFormSet(data, prefix=forms.LINES_PREFIX)


class OrderActionView(PermissionRequiredMixin, View):
    """Submit or cancel an order: GET asks to confirm, POST does it."""

    permission_required = "orders_write.change_order"
    raise_exception = True
    action = "submit"  # or "cancel"

    def command(self, reference: str) -> commands.Command:
        command_class = commands.SubmitOrder if self.action == "submit" else commands.CancelOrder
        return command_class(reference=reference)

    def render_form(self, reference: str, form: Form, status: int = 200) -> HttpResponse:
        context = {
            "reference": reference,
            "action": self.action,
            "form": form,
            # What cancelling would release, to confirm it knowingly.
            "releases": [
                {"sku": sku, "qty": qty, "batchref": batchref}
                for sku, qty, batchref in Allocation.objects.filter(
                    line__order__reference=reference
                )
                .order_by("line__product_id")
                .values_list("line__product_id", "line__quantity", "batch__reference")
            ]
            if self.action == "cancel"
            else [],
        }
        return render(self.request, "orders_write/order_action.html", context, status=status)

    def get(self, request: HttpRequest, reference: str) -> HttpResponse:
        if not Order.objects.filter(reference=reference).exists():
            raise Http404(f"Unknown order {reference}")
        return self.render_form(reference, Form())

    def post(self, request: HttpRequest, reference: str) -> HttpResponse:
        form = Form(request.POST)
        try:
            result = services.handle(self.command(reference))
        except domain.DomainError as error:
            forms.show_refusal(error, form)
            status = 404 if isinstance(error, domain.NotFound) else 200
            return self.render_form(reference, form, status=status)
        done = domain.SUBMITTED if self.action == "submit" else domain.CANCELLED
        messages.success(request, f"Order {reference} {done}.")
        return redirect_after(request, result, order_url(reference))


# --- correcting a placed order's lines ---------------------------------------------------


def allocation_outcome(result: services.CommandResult) -> str:
    """Where a command put a line (rule 4: out of stock is still a success), for a message."""
    for event in result.events:
        if event.kind == "Allocated":
            return f" Allocated from batch {event.batchref}."
        if event.kind == "OutOfStock":
            return f" Out of stock: {event.qty} x {event.sku} waits for stock."
    return ""


class OrderLinesMixin(PermissionBeforeLookupMixin):
    """The pages of one order's lines: the order (404 when unknown), and its line for the
    SKU in the URL when there is one (404 when it has none)."""

    permission_required = "orders_write.change_order"

    def look_up(self, *, reference: str, sku: str | None = None) -> None:
        order = Order.objects.filter(reference=reference).first()
        if order is None:
            raise Http404(f"Unknown order {reference}")
        self.order = order
        self.line = None
        if sku is not None:
            self.line = order.lines.filter(product_id=sku).first()
            if self.line is None:
                raise Http404(f"Order {reference} has no line for {sku}")

    def get_context_data(self, **kwargs):
        return super().get_context_data(order=self.order, line=self.line, **kwargs)


class AddLineView(OrderLinesMixin, CommandFormView):
    form_class = forms.AddLineForm
    template_name = "orders_write/line_form.html"

    def command(self, data):
        return commands.AddLine(reference=self.order.reference, sku=data["sku"], qty=data["qty"])

    def success(self, result, data):
        message = f"Added {data['qty']} x {data['sku']} to order {self.order.reference}."
        return message + allocation_outcome(result), order_url(self.order.reference)


class ChangeLineQuantityView(OrderLinesMixin, CommandFormView):
    form_class = forms.LineQuantityForm
    template_name = "orders_write/line_form.html"

    def get_initial(self):
        return {"qty": self.line.quantity}

    def command(self, data):
        return commands.ChangeLineQuantity(
            reference=self.order.reference, sku=self.line.product_id, qty=data["qty"]
        )

    def success(self, result, data):
        sku, reference = self.line.product_id, self.order.reference
        if not result.events:
            message = f"{sku} on order {reference} already had quantity {data['qty']}."
        else:
            message = f"{sku} on order {reference} now has quantity {data['qty']}."
        return message + allocation_outcome(result), order_url(reference)


class RemoveLineView(OrderLinesMixin, View):
    """Remove a line: GET asks to confirm it, saying what stock it releases; POST does it."""

    def render_form(self, form: Form, status: int = 200) -> HttpResponse:
        allocation = Allocation.objects.filter(line=self.line).select_related("batch").first()
        context = {
            "order": self.order,
            "line": self.line,
            "form": form,
            "releases": allocation.batch.reference if allocation else None,
            # The rules keep it (a submitted order is never empty): say so before asking.
            "kept": self.order.status == Order.Status.SUBMITTED and self.order.lines.count() == 1,
        }
        return render(self.request, "orders_write/line_remove.html", context, status=status)

    def get(self, request: HttpRequest, reference: str, sku: str) -> HttpResponse:
        return self.render_form(Form())

    def post(self, request: HttpRequest, reference: str, sku: str) -> HttpResponse:
        form = Form(request.POST)
        try:
            result = services.remove_line(commands.RemoveLine(reference=reference, sku=sku))
        except domain.DomainError as error:
            forms.show_refusal(error, form)
            return self.render_form(form)
        message = f"Removed {self.line.quantity} x {sku} from order {reference}."
        released = [event for event in result.events if event.kind == "Deallocated"]
        if released:
            message += f" Released {released[0].qty} from batch {released[0].batchref}."
        messages.success(request, message)
        return redirect_after(request, result, order_url(reference))
