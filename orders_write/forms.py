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


# The id of the page's <datalist> of known SKUs (templates/includes/known_skus.html).
KNOWN_SKUS = "known-skus"


def text(label: str, *, suggest: str | None = None, **kwargs) -> forms.CharField:
    """A text field; ``suggest`` names a <datalist> whose values the browser offers."""
    attrs = {**_TEXT, "list": suggest} if suggest else _TEXT
    # Not stripped: a blank or over-long value reaches the rules and gets their message.
    return forms.CharField(label=label, strip=False, widget=forms.TextInput(attrs=attrs), **kwargs)


def sku(**kwargs) -> forms.CharField:
    return text("SKU", suggest=KNOWN_SKUS, **kwargs)


def quantity(label: str = "Quantity") -> forms.IntegerField:
    return forms.IntegerField(label=label, widget=forms.NumberInput(attrs={"step": 1}))


class BatchForm(forms.Form):
    ref = text("Batch reference")
    sku = sku(help_text="A product we know. For a new one, tick “New product” below.")
    qty = quantity()
    eta = forms.DateField(
        label="ETA",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Leave empty for stock already in the warehouse.",
    )
    new_product = forms.BooleanField(
        label="New product", required=False, help_text="The SKU is new: create its product."
    )
    name = text("Product name", required=False, help_text="For a new product.")
    price = forms.DecimalField(
        label="Unit price",
        required=False,
        widget=forms.NumberInput(attrs={"step": "0.01", "min": "0"}),
        help_text="For a new product.",
    )

    def clean(self):
        data = super().clean()
        if data.get("new_product"):
            for name in ("name", "price"):
                if data.get(name) in (None, "") and name not in self.errors:
                    self.add_error(name, "A new product needs its name and price.")
        return data


class BatchQuantityForm(forms.Form):
    qty = quantity("New quantity")


class AllocateForm(forms.Form):
    orderid = text(
        "Order reference", help_text="An existing order. Place new orders on the order form."
    )
    sku = sku()
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
    sku = sku()
    qty = quantity()


# Two empty rows to start with; rows left empty are ignored.
LineFormSet = forms.formset_factory(
    LineForm, extra=2, max_num=domain.MAX_ORDER_LINES, validate_max=True
)
LINES_PREFIX = "lines"
