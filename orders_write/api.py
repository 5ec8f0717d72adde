"""The command API: each endpoint validates its input's shape, calls one service, and
answers with the consistency token of the write (header ``X-Consistency-Token``).

The rules themselves (positive quantities, known SKUs, ...) are the services'; a
refused command comes back through config.http.api.exception_handler.
"""

from __future__ import annotations

import dataclasses
from urllib.parse import quote

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from config.http.api import StrictSerializer, error_responses, flatten_errors, readable_values
from config.http.schema import (
    READ_THIS_WRITE,
    LinkedResponse,
    events_example,
    link,
    response_example,
)
from orders_write import api_examples, commands, domain, services

TOKEN_HEADER = OpenApiParameter(
    "X-Consistency-Token",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    response=True,
    description="Send it with a query to read this write.",
)
LOCATION_HEADER = OpenApiParameter(
    "Location",
    OpenApiTypes.STR,  # a path on this server, not an absolute URI
    OpenApiParameter.HEADER,
    response=[201, 202],
    description="Where to read the result.",
)


def _text(**kwargs) -> serializers.CharField:
    # Blank and over-long values reach the services, which refuse them with the rule.
    return serializers.CharField(allow_blank=True, trim_whitespace=False, **kwargs)


class EventSerializer(serializers.Serializer):
    name = serializers.CharField()
    data = serializers.DictField()


class LineOutcomeSerializer(serializers.Serializer):
    orderid = serializers.CharField()
    sku = serializers.CharField()
    qty = serializers.IntegerField()
    outcome = serializers.ChoiceField(
        choices=[domain.ALLOCATED, domain.OUT_OF_STOCK, domain.RELEASED],
        help_text="allocated (to to_batch; moved when it came from from_batch), "
        "out_of_stock (placed nowhere), or released (taken off from_batch).",
    )
    from_batch = serializers.CharField(allow_null=True)
    to_batch = serializers.CharField(allow_null=True)


class AcceptedSerializer(serializers.Serializer):
    events = EventSerializer(many=True, help_text="What the command did, in order.")
    lines = LineOutcomeSerializer(
        many=True, help_text="Where the stock of each order line the command touched went."
    )


def url_of(url_name: str, **keys: str) -> str:
    """The path of the URL named ``url_name`` for these SKUs or references, each escaped
    whole ("/" too, as %2F): reverse() would leave a key's slashes bare, making one key
    look like several path segments."""
    placeholders = {name: f"__{name}__" for name in keys}
    path = reverse(url_name, kwargs=placeholders)
    for name, key in keys.items():
        path = path.replace(placeholders[name], quote(key, safe=""), 1)
    return path


def command_response(
    result: services.CommandResult,
    status_code: int,
    *,
    location: str | None = None,
    body: dict | None = None,
) -> Response:
    if body is None:
        body = {
            "events": [{"name": event.kind, "data": event.as_payload()} for event in result.events],
            "lines": [dataclasses.asdict(outcome) for outcome in result.outcomes],
        }
    response = Response(body, status=status_code)
    response["X-Consistency-Token"] = result.consistency_token
    if location:
        response["Location"] = location
    return response


COMMAND_ERRORS = {
    400: "Invalid input, or a rule of the domain broken (the rule's message).",
    401: "Not authenticated.",
    403: "Not permitted (needs the clerks' permissions).",
    404: "Unknown order or batch.",
    409: "Duplicate reference.",
}


def _errors(*codes: int) -> dict:
    return error_responses(COMMAND_ERRORS, *codes)


def _read_product(from_sku: str) -> dict:
    return link(
        "get_product",
        "The product's availability, once it shows this write.",
        {"sku": from_sku, **READ_THIS_WRITE},
    )


def _read_order(from_reference: str) -> dict:
    return link(
        "get_order",
        "The order and its lines, once they show this write.",
        {"reference": from_reference, **READ_THIS_WRITE},
    )


def _read_allocations(from_orderid: str) -> dict:
    return link(
        "order_allocations",
        "The order's allocations, once they show this write.",
        {"orderid": from_orderid, **READ_THIS_WRITE},
    )


class CommandView(APIView):
    # Each view names its own; None (no view named any) is closed.
    required_permissions: tuple[str, ...] | None = None
    InputSerializer: type[StrictSerializer]

    def command(self, data: dict, **path: str) -> commands.Command:
        """The command for the request's body (``data``) and the keys in its path."""
        raise NotImplementedError

    def validated_command(self, request, **path: str) -> commands.Command:
        """The request's command, its body checked by the view's InputSerializer. A body
        it refuses is a 400 that also carries what the rules refuse of the fields it
        could read, so that every mistake is reported at once (rule 11)."""
        serializer = self.InputSerializer(data=request.data)
        if serializer.is_valid():
            return self.command(serializer.validated_data, **path)
        errors = flatten_errors(serializer.errors)
        refusals = services.refusals(self.command(readable_values(serializer), **path))
        for refusal in refusals:
            if refusal.field and refusal.field not in errors:
                errors.setdefault(refusal.field, []).append(refusal.message)
        raise serializers.ValidationError(errors)


class ProductCreateApi(CommandView):
    required_permissions = ("orders_write.add_product",)

    class InputSerializer(StrictSerializer):
        sku = _text()
        name = _text()
        price = serializers.DecimalField(max_digits=None, decimal_places=None, required=False)

    def command(self, data):
        return commands.CreateProduct(**data)

    @extend_schema(
        operation_id="create_product",
        summary="Create a product",
        description=(
            "A product: its SKU (case sensitive), name and unit price. Receiving a batch of an "
            "unknown SKU creates its product too (named after the SKU, price 0)."
        ),
        examples=api_examples.CREATE_PRODUCT,
        request=InputSerializer,
        responses={
            201: LinkedResponse(
                AcceptedSerializer,
                "Created.",
                links={"GetProduct": _read_product("$request.body#/sku")},
            ),
            **_errors(400, 401, 403, 409),
        },
        parameters=[TOKEN_HEADER, LOCATION_HEADER],
    )
    def post(self, request):
        command = self.validated_command(request)
        result = services.create_product(command)
        return command_response(result, 201, location=url_of("api-product", sku=command.sku))


class BatchCreateApi(CommandView):
    required_permissions = ("orders_write.add_batch",)

    class InputSerializer(StrictSerializer):
        ref = _text()
        sku = _text()
        qty = serializers.IntegerField()
        eta = serializers.DateField(allow_null=True, required=False, default=None)

    def command(self, data):
        return commands.CreateBatch(**data)

    @extend_schema(
        operation_id="create_batch",
        summary="Receive a batch",
        description=(
            "Stock of a SKU: in the warehouse (`eta` null) or on its way (`eta` a date). Lines "
            "waiting for that SKU are allocated to it at once, in the order their orders were "
            "submitted."
        ),
        examples=api_examples.CREATE_BATCH,
        request=InputSerializer,
        responses={
            201: LinkedResponse(
                AcceptedSerializer,
                "Received.",
                links={
                    "GetProduct": _read_product("$request.body#/sku"),
                    "ChangeBatchQuantity": link(
                        "change_batch_quantity",
                        "Change this batch's quantity.",
                        {"ref": "$request.body#/ref"},
                    ),
                },
            ),
            **_errors(400, 401, 403, 409),
        },
        parameters=[TOKEN_HEADER, LOCATION_HEADER],
    )
    def post(self, request):
        command = self.validated_command(request)
        result = services.create_batch(command)
        return command_response(result, 201, location=url_of("api-product", sku=command.sku))


class BatchQuantityApi(CommandView):
    required_permissions = ("orders_write.change_batch",)

    class InputSerializer(StrictSerializer):
        qty = serializers.IntegerField()

    def command(self, data, ref):
        return commands.ChangeBatchQuantity(ref=ref, qty=data.get("qty"))

    @extend_schema(
        operation_id="change_batch_quantity",
        summary="Change a batch's quantity",
        description=(
            "Below what is allocated to it, lines leave the batch until the rest fits, and each "
            "is allocated again: to another batch, or out of stock."
        ),
        examples=api_examples.CHANGE_BATCH_QUANTITY,
        request=InputSerializer,
        responses={202: AcceptedSerializer, **_errors(400, 401, 403, 404)},
        parameters=[TOKEN_HEADER],
    )
    def post(self, request, ref: str):
        command = self.validated_command(request, ref=ref)
        return command_response(services.change_batch_quantity(command), 202)


class OrderLineSerializer(StrictSerializer):
    sku = _text()
    qty = serializers.IntegerField()


class OrderPlaceApi(CommandView):
    required_permissions = ("orders_write.add_order",)

    class InputSerializer(StrictSerializer):
        reference = _text(required=False, allow_null=True, default=None)
        customer = _text()
        shipping_address = _text()
        lines = OrderLineSerializer(many=True, max_length=domain.MAX_ORDER_LINES)

    class OutputSerializer(serializers.Serializer):
        reference = serializers.CharField()

    def command(self, data):
        return commands.PlaceOrder(
            customer=data.get("customer"),
            shipping_address=data.get("shipping_address"),
            lines=tuple(commands.OrderLineInput(**line) for line in data.get("lines") or ()),
            reference=data.get("reference") or None,
        )

    @extend_schema(
        operation_id="place_order",
        summary="Place an order",
        description=(
            "A pending order with its lines (one per SKU). Nothing is allocated until it is "
            "submitted. Without `reference`, one is generated and answered."
        ),
        examples=api_examples.PLACE_ORDER,
        request=InputSerializer,
        responses={
            201: LinkedResponse(
                OutputSerializer,
                "Placed (pending).",
                links={
                    "GetOrder": _read_order("$response.body#/reference"),
                    "SubmitOrder": link(
                        "submit_order",
                        "Submit this order.",
                        {"reference": "$response.body#/reference"},
                    ),
                    "CancelOrder": link(
                        "cancel_order",
                        "Cancel this order.",
                        {"reference": "$response.body#/reference"},
                    ),
                },
            ),
            **_errors(400, 401, 403, 409),
        },
        parameters=[TOKEN_HEADER, LOCATION_HEADER],
    )
    def post(self, request):
        result = services.place_order(self.validated_command(request))
        return command_response(
            result,
            201,
            location=url_of("api-order", reference=result.reference),
            body={"reference": result.reference},
        )


class OrderSubmitApi(CommandView):
    required_permissions = ("orders_write.change_order",)

    @extend_schema(
        operation_id="submit_order",
        summary="Submit an order",
        description=(
            "Allocates each line: warehouse stock first, then the shipment due soonest. A line no "
            "batch can hold waits (an `OutOfStock` event) until stock arrives."
        ),
        examples=api_examples.SUBMIT_ORDER,
        request=None,
        responses={
            202: LinkedResponse(
                AcceptedSerializer,
                "Submitted: its lines allocated (or out of stock).",
                links={
                    "GetOrder": _read_order("$request.path.reference"),
                    "GetAllocations": _read_allocations("$request.path.reference"),
                    "CancelOrder": link(
                        "cancel_order",
                        "Cancel this order.",
                        {"reference": "$request.path.reference"},
                    ),
                },
            ),
            **_errors(400, 401, 403, 404),
        },
        parameters=[TOKEN_HEADER],
    )
    def post(self, request, reference: str):
        result = services.submit_order(commands.SubmitOrder(reference=reference))
        return command_response(result, 202)


class OrderCancelApi(CommandView):
    required_permissions = ("orders_write.change_order",)

    @extend_schema(
        operation_id="cancel_order",
        summary="Cancel an order",
        description=(
            "Releases every allocation of the order. A cancelled order accepts no further command."
        ),
        examples=api_examples.CANCEL_ORDER,
        request=None,
        responses={
            202: LinkedResponse(
                AcceptedSerializer,
                "Cancelled: its allocations released.",
                links={"GetOrder": _read_order("$request.path.reference")},
            ),
            **_errors(400, 401, 403, 404),
        },
        parameters=[TOKEN_HEADER],
    )
    def post(self, request, reference: str):
        result = services.cancel_order(commands.CancelOrder(reference=reference))
        return command_response(result, 202)


class AllocateApi(CommandView):
    required_permissions = ("orders_write.add_allocation",)

    class InputSerializer(StrictSerializer):
        orderid = _text()
        sku = _text()
        qty = serializers.IntegerField()

    def command(self, data):
        return commands.Allocate(**data)

    @extend_schema(
        operation_id="allocate",
        summary="Allocate a line",
        description=(
            "Adds the line to the order and allocates it: warehouse stock first, then the "
            "shipment due soonest. An unknown reference creates a submitted order without "
            "customer. When no batch can hold the line it still succeeds, with an `OutOfStock` "
            "event, and the line waits for stock. Allocating a line that is already allocated "
            "changes nothing."
        ),
        examples=api_examples.ALLOCATE,
        request=InputSerializer,
        responses={
            202: LinkedResponse(
                AcceptedSerializer,
                "Allocated, or out of stock (an OutOfStock event).",
                links={
                    "GetAllocations": _read_allocations("$request.body#/orderid"),
                    "GetOrder": _read_order("$request.body#/orderid"),
                    "Deallocate": link(
                        "deallocate",
                        "Release this line.",
                        request_body={
                            "orderid": "$request.body#/orderid",
                            "sku": "$request.body#/sku",
                        },
                    ),
                },
            ),
            **_errors(400, 401, 403, 404, 409),
        },
        parameters=[TOKEN_HEADER, LOCATION_HEADER],
    )
    def post(self, request):
        command = self.validated_command(request)
        result = services.allocate(command)
        location = url_of("api-allocations", orderid=command.orderid)
        return command_response(result, status.HTTP_202_ACCEPTED, location=location)


class DeallocateApi(CommandView):
    required_permissions = ("orders_write.delete_allocation",)

    class InputSerializer(StrictSerializer):
        orderid = _text()
        sku = _text()

    def command(self, data):
        return commands.Deallocate(**data)

    @extend_schema(
        operation_id="deallocate",
        summary="Deallocate a line",
        description=("Releases the line's allocation; the line stays on the order, unallocated."),
        examples=api_examples.DEALLOCATE,
        request=InputSerializer,
        responses={
            202: LinkedResponse(
                AcceptedSerializer,
                "Released.",
                links={"GetOrder": _read_order("$request.body#/orderid")},
            ),
            **_errors(400, 401, 403, 404),
        },
        parameters=[TOKEN_HEADER],
    )
    def post(self, request):
        result = services.deallocate(self.validated_command(request))
        return command_response(result, status.HTTP_202_ACCEPTED)


# --- correcting a placed order's lines ----------------------------------------------------
#
# The order's reference and the line's SKU are both in the path, each escaped whole
# (url_of): /api/orders/<reference>/lines/<sku>. References never hold a "/lines/" part
# and new SKUs never end in "/remove" (domain.check_order_reference, check_new_sku), so
# the path reads one way only, slashes or not.


def _line_links(sku: str) -> dict:
    return {
        "GetOrder": _read_order("$request.path.reference"),
        "ChangeLineQuantity": link(
            "change_line_quantity",
            "Change this line's quantity.",
            {"reference": "$request.path.reference", "sku": sku},
        ),
        "RemoveLine": link(
            "remove_line",
            "Remove this line.",
            {"reference": "$request.path.reference", "sku": sku},
        ),
    }


def _accepted_example(*events: tuple[str, dict]) -> OpenApiExample:
    return response_example(202, "Accepted", events_example(*events))


class OrderLineAddApi(CommandView):
    required_permissions = ("orders_write.change_order",)

    class InputSerializer(StrictSerializer):
        sku = _text()
        qty = serializers.IntegerField()

    def command(self, data, reference):
        return commands.AddLine(reference=reference, sku=data.get("sku"), qty=data.get("qty"))

    @extend_schema(
        operation_id="add_line",
        summary="Add a line to an order",
        description=(
            "Adds a line to a pending or submitted order, at the product's price now. A "
            "submitted order's new line is allocated at once, or recorded out of stock "
            "(still 202). An order has one line per SKU: a second is 409, change the "
            "first's quantity instead."
        ),
        request=InputSerializer,
        responses={
            202: LinkedResponse(
                AcceptedSerializer,
                "Added (and, for a submitted order, allocated or out of stock).",
                links=_line_links("$request.body#/sku"),
            ),
            **_errors(400, 401, 403, 404, 409),
        },
        parameters=[TOKEN_HEADER, LOCATION_HEADER],
        examples=[
            OpenApiExample(
                "Two desk lamps", value={"sku": "DESK-LAMP", "qty": 2}, request_only=True
            ),
            _accepted_example(
                (
                    "LineAdded",
                    {"reference": "ORD-1001", "sku": "DESK-LAMP", "qty": 2, "unit_price": "24.90"},
                ),
                (
                    "Allocated",
                    {"orderid": "ORD-1001", "sku": "DESK-LAMP", "qty": 2, "batchref": "B-2026-07"},
                ),
            ),
        ],
    )
    def post(self, request, reference: str):
        result = services.add_line(self.validated_command(request, reference=reference))
        return command_response(result, 202, location=url_of("api-order", reference=reference))


class OrderLineQuantityApi(CommandView):
    required_permissions = ("orders_write.change_order",)

    class InputSerializer(StrictSerializer):
        qty = serializers.IntegerField()

    def command(self, data, reference, sku):
        return commands.ChangeLineQuantity(reference=reference, sku=sku, qty=data.get("qty"))

    @extend_schema(
        operation_id="change_line_quantity",
        summary="Change an order line's quantity",
        description=(
            "Sets the quantity of the order's line for this SKU. An allocated line, and any "
            "line of a submitted order, is allocated again by the usual policy (it may stay "
            "on its batch, move, or go out of stock: still 202). The same quantity changes "
            "nothing. Stock a lower quantity frees does not fill waiting lines."
        ),
        request=InputSerializer,
        responses={
            202: LinkedResponse(
                AcceptedSerializer,
                "Changed (and reallocated when it was allocated or the order is submitted).",
                links=_line_links("$request.path.sku"),
            ),
            **_errors(400, 401, 403, 404),
        },
        parameters=[TOKEN_HEADER, LOCATION_HEADER],
        examples=[
            OpenApiExample("Five instead", value={"qty": 5}, request_only=True),
            _accepted_example(
                (
                    "Deallocated",
                    {"orderid": "ORD-1001", "sku": "DESK-LAMP", "qty": 2, "batchref": "B-2026-07"},
                ),
                (
                    "LineQuantityChanged",
                    {"reference": "ORD-1001", "sku": "DESK-LAMP", "qty": 5, "previous_qty": 2},
                ),
                (
                    "Allocated",
                    {"orderid": "ORD-1001", "sku": "DESK-LAMP", "qty": 5, "batchref": "B-2026-07"},
                ),
            ),
        ],
    )
    def post(self, request, reference: str, sku: str):
        command = self.validated_command(request, reference=reference, sku=sku)
        result = services.change_line_quantity(command)
        return command_response(result, 202, location=url_of("api-order", reference=reference))


class OrderLineRemoveApi(CommandView):
    required_permissions = ("orders_write.change_order",)

    @extend_schema(
        operation_id="remove_line",
        summary="Remove a line from an order",
        description=(
            "Removes the order's line for this SKU, releasing its allocation. A submitted "
            "order keeps at least one line (400): cancel it instead."
        ),
        request=None,
        responses={
            202: LinkedResponse(
                AcceptedSerializer,
                "Removed: its allocation released.",
                links={"GetOrder": _read_order("$request.path.reference")},
            ),
            **_errors(400, 401, 403, 404),
        },
        parameters=[TOKEN_HEADER, LOCATION_HEADER],
        examples=[
            _accepted_example(
                (
                    "Deallocated",
                    {"orderid": "ORD-1001", "sku": "DESK-LAMP", "qty": 5, "batchref": "B-2026-07"},
                ),
                ("LineRemoved", {"reference": "ORD-1001", "sku": "DESK-LAMP", "qty": 5}),
            ),
        ],
    )
    def post(self, request, reference: str, sku: str):
        result = services.remove_line(commands.RemoveLine(reference=reference, sku=sku))
        return command_response(result, 202, location=url_of("api-order", reference=reference))
