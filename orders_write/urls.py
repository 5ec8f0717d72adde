"""The write pages (forms)."""

from django.urls import path

from orders_write import views

urlpatterns = [
    path("orders/new/", views.PlaceOrderView.as_view(), name="place-order"),
    path(
        "orders/<path:reference>/submit/",
        views.OrderActionView.as_view(action="submit"),
        name="submit-order",
    ),
    path(
        "orders/<path:reference>/cancel/",
        views.OrderActionView.as_view(action="cancel"),
        name="cancel-order",
    ),
    path("batches/new/", views.ReceiveBatchView.as_view(), name="receive-batch"),
    path(
        "batches/<path:ref>/quantity/",
        views.ChangeBatchQuantityView.as_view(),
        name="change-batch-quantity",
    ),
    path("allocate/", views.AllocateView.as_view(), name="allocate"),
]
