"""OpenAPI generation (drf-spectacular) for URLs that serve a view per HTTP method,
responses that carry OpenAPI links (which drf-spectacular 0.30 cannot declare), and the
helpers each operation's examples are written with."""

from __future__ import annotations

import dataclasses

from drf_spectacular import openapi
from drf_spectacular.generators import SchemaGenerator as SpectacularSchemaGenerator
from drf_spectacular.plumbing import force_instance
from drf_spectacular.utils import OpenApiExample, OpenApiResponse

from orders_write import domain, events


class SchemaGenerator(SpectacularSchemaGenerator):
    """Documents each method of a ``by_method`` URL with the view that serves it."""

    def create_view(self, callback, method, request=None):
        view_class = getattr(callback.cls, "views", {}).get(method.lower())
        if view_class is not None:
            callback = view_class.as_view()
        return super().create_view(callback, method, request)


def link(
    operation_id: str,
    description: str,
    parameters: dict[str, str] | None = None,
    request_body: dict[str, str] | None = None,
) -> dict:
    """An OpenAPI link object: the operation a client may call next, and where each of its
    parameters (or body fields) comes from, as a runtime expression such as
    ``$request.body#/sku``; a name may say where the parameter goes
    (``header.X-Consistency-Token``)."""
    definition = {"operationId": operation_id, "description": description}
    if parameters:
        definition["parameters"] = parameters
    if request_body:
        definition["requestBody"] = request_body
    return definition


# A query linked from a command waits for that command's write.
READ_THIS_WRITE = {"header.X-Consistency-Token": "$response.header.X-Consistency-Token"}


def request_example(name: str, value: object, summary: str = "") -> OpenApiExample:
    """An example of an operation's JSON body."""
    return OpenApiExample(name, value=value, summary=summary or name, request_only=True)


def response_example(
    status_code: int, name: str, value: object, summary: str = ""
) -> OpenApiExample:
    """An example of the JSON an operation answers with ``status_code``. For a list, the
    value is one item: drf-spectacular puts it in the list (and the page) itself."""
    return OpenApiExample(
        name,
        value=value,
        summary=summary or name,
        response_only=True,
        status_codes=[status_code],
    )


def error_example(
    status_code: int, name: str, message: str, errors: dict[str, list[str]] | None = None
) -> OpenApiExample:
    """An example of a refusal: ``{"message", "errors"?}`` (config.http.api)."""
    body: dict[str, object] = {"message": message}
    if errors:
        body["errors"] = errors
    return response_example(status_code, name, body)


def events_example(*recorded: tuple[str, dict]) -> dict:
    """The body of an accepted command: the events it recorded, in order, and where the
    stock of each order line they touched went."""
    kinds = events.Event.registry
    outcomes = domain.line_outcomes(kinds[name](**data) for name, data in recorded)
    return {
        "events": [{"name": name, "data": data} for name, data in recorded],
        "lines": [dataclasses.asdict(outcome) for outcome in outcomes],
    }


class LinkedResponse(OpenApiResponse):
    """An OpenApiResponse with OpenAPI links: {name: link(...)}."""

    def __init__(self, response=None, description: str = "", *, links: dict[str, dict]) -> None:
        super().__init__(response, description)
        self.links = links


class AutoSchema(openapi.AutoSchema):
    """Names a view's nested serializer after the view: AllocateApi.InputSerializer
    becomes the component AllocateApiInput, so that every view may say InputSerializer.
    Says that a StrictSerializer's body takes no other field, and writes the links of a
    LinkedResponse into its response object."""

    def get_serializer_name(self, serializer, direction) -> str:
        return type(serializer).__qualname__.replace(".", "")

    def _map_serializer(self, serializer, direction, bypass_extensions=False):
        # Imported here: config.http.api imports DRF, which imports this module.
        from config.http.api import StrictSerializer

        schema = super()._map_serializer(serializer, direction, bypass_extensions)
        if direction == "request" and isinstance(force_instance(serializer), StrictSerializer):
            schema["additionalProperties"] = False  # it refuses fields it does not know
        return schema

    def _get_response_for_code(
        self, serializer, status_code, media_types=None, direction="response"
    ):
        response = super()._get_response_for_code(serializer, status_code, media_types, direction)
        if isinstance(serializer, LinkedResponse):
            response["links"] = serializer.links
        return response
