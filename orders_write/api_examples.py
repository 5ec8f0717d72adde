"""Examples of the command API's requests and answers, as the OpenAPI schema shows them:
one shop (red dining chairs in the warehouse and on a ship, order web-1042 of Ada
Lovelace's) told through every command, with the bodies the API really answers."""

from __future__ import annotations

from config.http.schema import error_example, events_example, request_example, response_example

CHAIR = {"sku": "RED-CHAIR", "name": "Red dining chair", "price": "89.00"}
WAREHOUSE_BATCH = {"ref": "depot-chairs-0412", "sku": "RED-CHAIR", "qty": 20, "eta": None}
SHIPMENT = {"ref": "ship-chairs-0415", "sku": "RED-CHAIR", "qty": 50, "eta": "2026-12-14"}
ORDER = {
    "reference": "web-1042",
    "customer": "Ada Lovelace",
    "shipping_address": "12 St James's Square\nLondon SW1Y 4JH",
    "lines": [{"sku": "RED-CHAIR", "qty": 4}, {"sku": "OAK-TABLE", "qty": 1}],
}
ALLOCATED_CHAIRS = {
    "orderid": "web-1042",
    "sku": "RED-CHAIR",
    "qty": 4,
    "batchref": "depot-chairs-0412",
}
ALLOCATED_TABLE = {
    "orderid": "web-1042",
    "sku": "OAK-TABLE",
    "qty": 1,
    "batchref": "depot-tables-0398",
}

INVALID_SKU = error_example(
    400, "Unknown SKU", "Invalid sku BLUE-SOFA", {"sku": ["Invalid sku BLUE-SOFA"]}
)
QUANTITY_NOT_POSITIVE = error_example(
    400,
    "Quantity not positive",
    "Quantity must be positive",
    {"qty": ["Quantity must be positive"]},
)
UNKNOWN_ORDER = error_example(
    404, "Unknown order", "Unknown order web-9999", {"reference": ["Unknown order web-9999"]}
)
ORDER_CANCELLED = error_example(
    400,
    "Order cancelled",
    "Order web-1042 is cancelled",
    {"reference": ["Order web-1042 is cancelled"]},
)

CREATE_PRODUCT = [
    request_example("A product", CHAIR),
    response_example(201, "Created", events_example(("ProductCreated", CHAIR))),
    error_example(
        409,
        "SKU taken",
        "Product RED-CHAIR already exists",
        {"sku": ["Product RED-CHAIR already exists"]},
    ),
]

CREATE_BATCH = [
    request_example("A shipment", SHIPMENT, "A shipment due on 14 December"),
    request_example("Warehouse stock", WAREHOUSE_BATCH, "Stock already in the warehouse (no ETA)"),
    response_example(
        201,
        "Received",
        events_example(
            ("BatchCreated", SHIPMENT),
            # A line that was waiting for chairs gets them in the same transaction.
            ("Allocated", {**ALLOCATED_CHAIRS, "batchref": "ship-chairs-0415"}),
        ),
        "Received, and a waiting line allocated to it",
    ),
    error_example(
        409,
        "Reference taken",
        "Batch ship-chairs-0415 already exists",
        {"ref": ["Batch ship-chairs-0415 already exists"]},
    ),
]

CHANGE_BATCH_QUANTITY = [
    request_example("Fewer than allocated", {"qty": 2}, "Only 2 of the 20 chairs arrived"),
    response_example(
        202,
        "Reallocated",
        events_example(
            (
                "BatchQuantityChanged",
                {"ref": "depot-chairs-0412", "sku": "RED-CHAIR", "qty": 2, "previous_qty": 20},
            ),
            ("Deallocated", ALLOCATED_CHAIRS),
            ("Allocated", {**ALLOCATED_CHAIRS, "batchref": "ship-chairs-0415"}),
        ),
        "Lowered below what was allocated: the line moved to the shipment",
    ),
    QUANTITY_NOT_POSITIVE,
    error_example(
        404, "Unknown batch", "Unknown batch depot-9", {"ref": ["Unknown batch depot-9"]}
    ),
]

PLACE_ORDER = [
    request_example("An order", ORDER, "An order with two lines"),
    request_example(
        "Reference generated",
        {key: value for key, value in ORDER.items() if key != "reference"},
        "Without a reference: the answer gives the one generated",
    ),
    response_example(201, "Placed", {"reference": "web-1042"}, "Placed (pending)"),
    error_example(
        400,
        "Line refused",
        "Quantity must be positive",
        {"lines.1.qty": ["Quantity must be positive"]},
    ),
    error_example(
        409,
        "Reference taken",
        "Order web-1042 already exists",
        {"reference": ["Order web-1042 already exists"]},
    ),
]

SUBMIT_ORDER = [
    response_example(
        202,
        "Submitted",
        events_example(
            ("OrderSubmitted", {"reference": "web-1042"}),
            ("Allocated", ALLOCATED_CHAIRS),
            ("Allocated", ALLOCATED_TABLE),
        ),
        "Submitted: each line allocated",
    ),
    error_example(
        400,
        "Empty order",
        "Cannot submit empty order",
        {"lines": ["Cannot submit empty order"]},
    ),
    UNKNOWN_ORDER,
]

CANCEL_ORDER = [
    response_example(
        202,
        "Cancelled",
        events_example(
            ("OrderCancelled", {"reference": "web-1042"}),
            ("Deallocated", ALLOCATED_CHAIRS),
            ("Deallocated", ALLOCATED_TABLE),
        ),
        "Cancelled: its stock released",
    ),
    ORDER_CANCELLED,
    UNKNOWN_ORDER,
]

ALLOCATE = [
    request_example(
        "A line", {"orderid": "web-1042", "sku": "OAK-TABLE", "qty": 1}, "Add a table to web-1042"
    ),
    response_example(202, "Allocated", events_example(("Allocated", ALLOCATED_TABLE))),
    response_example(
        202,
        "Out of stock",
        events_example(
            (
                "OrderPlaced",
                {"reference": "web-1043", "customer": "", "skus": [], "status": "submitted"},
            ),
            ("OutOfStock", {"sku": "RED-CHAIR", "orderid": "web-1043", "qty": 80}),
        ),
        "A new order, its line waiting for stock (allocated when a batch arrives)",
    ),
    INVALID_SKU,
    error_example(
        400,
        "Order cancelled",
        "Order web-1042 is cancelled",
        {"orderid": ["Order web-1042 is cancelled"]},
    ),
]

DEALLOCATE = [
    request_example(
        "A line", {"orderid": "web-1042", "sku": "OAK-TABLE"}, "Release web-1042's table"
    ),
    response_example(202, "Released", events_example(("Deallocated", ALLOCATED_TABLE))),
    INVALID_SKU,
    error_example(
        404, "Unknown order", "Unknown order web-9999", {"orderid": ["Unknown order web-9999"]}
    ),
]
