"""OpenAPI generation (drf-spectacular) for URLs that serve a view per HTTP method."""

from drf_spectacular import openapi
from drf_spectacular.generators import SchemaGenerator as SpectacularSchemaGenerator


class SchemaGenerator(SpectacularSchemaGenerator):
    """Documents each method of a ``by_method`` URL with the view that serves it."""

    def create_view(self, callback, method, request=None):
        view_class = getattr(callback.cls, "views", {}).get(method.lower())
        if view_class is not None:
            callback = view_class.as_view()
        return super().create_view(callback, method, request)


class AutoSchema(openapi.AutoSchema):
    """Names a view's nested serializer after the view: AllocateApi.InputSerializer
    becomes the component AllocateApiInput, so that every view may say InputSerializer."""

    def get_serializer_name(self, serializer, direction) -> str:
        return type(serializer).__qualname__.replace(".", "")
