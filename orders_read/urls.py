"""The read pages."""

from django.urls import path

import config.http.converters  # noqa: F401 (registers <key:>)
from orders_read import views

urlpatterns = [
    path("orders/", views.order_list, name="orders"),
    path("orders.csv", views.orders_csv, name="orders-csv"),
    path("stock/", views.stock, name="stock"),
    path("stock.csv", views.stock_csv, name="stock-csv"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("read-models/", views.read_models, name="read-models"),
    path("read-models/refresh/", views.refresh_read_models, name="refresh-read-models"),
    # Last: a reference may contain "/".
    path("orders/<key:reference>/", views.order_detail, name="order"),
]
