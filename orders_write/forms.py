"""The staff forms: the shape of the input only (types, presence); the services judge it.

Field names are the API's, so a rule's error lands beside the field it names.
"""

from __future__ import annotations

from django import forms

from orders_write import domain

_TEXT = {"maxlength": domain.MAX_TEXT_LENGTH}


def show_refusal(
    error: domain.DomainError, form: forms.Form, lines: list[forms.Form] | None = None
) -> None:
    """Put each of a refused command's messages beside the field it names (else above
    the form): the one mapping of domain errors to form errors, for the pages and the
    admin."""
    for refusal in domain.each_refusal(error):
        field = refusal.field or ""
        if field.startswith("lines.") and lines is not None:
            _, index, line_field = field.split(".")
            lines[int(index)].add_error(line_field, refusal.message)
        elif field in form.fields:
            form.add_error(field, refusal.message)
        else:
            form.add_error(None, refusal.message)


def text(label: str, **kwargs) -> forms.CharField:
    # Not stripped: a blank or over-long value reaches the rules and gets their message.
    return forms.CharField(label=label, strip=False, widget=forms.TextInput(attrs=_TEXT), **kwargs)


def quantity(label: str = "Quantity") -> forms.IntegerField:
    return forms.IntegerField(label=label, widget=forms.NumberInput(attrs={"step": 1}))


class BatchForm(forms.Form):
    ref = text("Batch reference")
    sku = text("SKU", help_text="A new SKU creates its product.")
    qty = quantity()
    eta = forms.DateField(
        label="ETA",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Leave empty for stock already in the warehouse.",
    )


class BatchQuantityForm(forms.Form):
    qty = quantity("New quantity")


class AllocateForm(forms.Form):
    orderid = text("Order reference", help_text="A new reference creates a submitted order.")
    sku = text("SKU")
    qty = quantity()


class AddLineForm(forms.Form):
    sku = text("SKU")
    qty = quantity()


class LineQuantityForm(forms.Form):
    qty = quantity("New quantity")


class OrderForm(forms.Form):
    reference = text("Reference", required=False, help_text="Leave empty to get one.")
    customer = text("Customer")
    shipping_address = forms.CharField(
        label="Shipping address", strip=False, widget=forms.Textarea(attrs={"rows": 3})
    )


class LineForm(forms.Form):
    sku = text("SKU")
    qty = quantity()


# Two empty rows to start with; rows left empty are ignored.
LineFormSet = forms.formset_factory(
    LineForm, extra=2, max_num=domain.MAX_ORDER_LINES, validate_max=True
)
LINES_PREFIX = "lines"
