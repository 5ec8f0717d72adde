"""The project's URLs: the API, the admin, login and logout, and the staff pages."""

from django.contrib import admin
from django.contrib.auth.decorators import login_not_required
from django.urls import URLPattern, include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

import config.http.converters  # noqa: F401 (registers <key:>)
from config.http.api import TokenView, api_not_found, by_method
from config.http.views import LoginView
from orders_read import api as read_api
from orders_write import api as write_api

admin.site.site_header = "Quartermaster administration"
admin.site.site_title = "Quartermaster admin"
admin.site.site_url = "/orders/"

api = [
    path("auth/token/", TokenView.as_view(), name="api-token"),
    path("products", by_method(get=read_api.ProductListApi, post=write_api.ProductCreateApi)),
    path("products/<key:sku>", read_api.ProductDetailApi.as_view(), name="api-product"),
    path("batches", write_api.BatchCreateApi.as_view()),
    path("batches/<key:ref>/quantity", write_api.BatchQuantityApi.as_view()),
    path("orders", by_method(get=read_api.OrderListApi, post=write_api.OrderPlaceApi)),
    path("orders/<key:reference>/submit", write_api.OrderSubmitApi.as_view()),
    path("orders/<key:reference>/cancel", write_api.OrderCancelApi.as_view()),
    path("orders/<order_of_lines:reference>/lines", write_api.OrderLineAddApi.as_view()),
    # .../remove first: a SKU never ends in "/remove" (domain.check_new_sku).
    path(
        "orders/<order_of_lines:reference>/lines/<key:sku>/remove",
        write_api.OrderLineRemoveApi.as_view(),
    ),
    path(
        "orders/<order_of_lines:reference>/lines/<key:sku>",
        write_api.OrderLineQuantityApi.as_view(),
    ),
    path("orders/<key:reference>/history", read_api.OrderHistoryApi.as_view()),
    path("orders/<key:reference>", read_api.OrderDetailApi.as_view(), name="api-order"),
    path("allocate", write_api.AllocateApi.as_view()),
    path("deallocate", write_api.DeallocateApi.as_view()),
    path("allocations/<key:orderid>", read_api.AllocationsApi.as_view(), name="api-allocations"),
    path("read-models/", read_api.ReadModelsApi.as_view(), name="api-read-models"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    re_path(r"^[\s\S]*$", api_not_found),  # [\s\S]: a path with a newline too
]


def _authenticated_by_drf(pattern: URLPattern) -> URLPattern:
    """The API authenticates in its views (token or session) and answers 401 itself,
    so the login-required middleware must not redirect it to the login page."""
    pattern.callback = login_not_required(pattern.callback)
    return pattern


urlpatterns = [
    path("", RedirectView.as_view(url="/orders/", permanent=False), name="home"),
    path("api/", include([_authenticated_by_drf(pattern) for pattern in api])),
    path("accounts/login/", LoginView.as_view(), name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    # The write side's routes first: /orders/new/ is not an order's reference.
    path("", include("orders_write.urls")),
    path("", include("orders_read.urls")),
]
