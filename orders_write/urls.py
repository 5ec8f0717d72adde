"""The write pages (forms)."""

from django.urls import path

import config.http.converters  # noqa: F401 (registers <key:>)
from orders_write import views

urlpatterns = [
    path("orders/new/", views.PlaceOrderView.as_view(), name="place-order"),
    path(
        "orders/<key:reference>/submit/",
        views.OrderActionView.as_view(action="submit"),
        name="submit-order",
    ),
    path(
        "orders/<key:reference>/cancel/",
        views.OrderActionView.as_view(action="cancel"),
        name="cancel-order",
    ),
    # The reference is read up to its first "/lines" part (config.http.converters), and
    # .../remove/ comes first: a SKU never ends in "/remove".
    path("orders/<order_of_lines:reference>/lines/", views.AddLineView.as_view(), name="add-line"),
    path(
        "orders/<order_of_lines:reference>/lines/<key:sku>/remove/",
        views.RemoveLineView.as_view(),
        name="remove-line",
    ),
    path(
        "orders/<order_of_lines:reference>/lines/<key:sku>/",
        views.ChangeLineQuantityView.as_view(),
        name="change-line",
    ),
    path("batches/new/", views.ReceiveBatchView.as_view(), name="receive-batch"),
    path(
        "batches/<key:ref>/quantity/",
        views.ChangeBatchQuantityView.as_view(),
        name="change-batch-quantity",
    ),
    path("allocate/", views.AllocateView.as_view(), name="allocate"),
]
