"""Examples of the query API's answers, as the OpenAPI schema shows them: the shop of the
command API's examples (red dining chairs, order web-1042) read back, with the bodies the
API really answers."""

from __future__ import annotations

from config.http.schema import error_example, response_example

CHAIR = {
    "sku": "RED-CHAIR",
    "name": "Red dining chair",
    "price": "89.00",
    "purchased": 70,
    "allocated": 4,
    "available": 66,
    "available_now": 16,
    "next_eta": "2026-12-14",
    "batch_count": 2,
}
ORDER = {
    "reference": "web-1042",
    "customer_name": "Ada Lovelace",
    "shipping_address": "12 St James's Square\nLondon SW1Y 4JH",
    "status": "submitted",
    "line_count": 2,
    "total_quantity": 5,
    "total_amount": "996.00",
    "allocated_line_count": 1,
    "waiting": True,
    "stock_expected": None,
    "created_at": "2026-11-30T09:41:07.512909Z",
}

MALFORMED_TOKEN = error_example(
    400,
    "Malformed token",
    "X-Consistency-Token: Malformed consistency token: use the X-Consistency-Token value a "
    "command returned.",
    {
        "X-Consistency-Token": [
            "Malformed consistency token: use the X-Consistency-Token value a command returned."
        ]
    },
)

ORDER_ALLOCATIONS = [
    response_example(200, "Allocations", {"sku": "RED-CHAIR", "batchref": "depot-chairs-0412"}),
    error_example(404, "No allocation", "Order web-1042 has no allocation."),
    MALFORMED_TOKEN,
]

LIST_ORDERS = [
    response_example(
        200, "Orders", ORDER, "A submitted order, its table waiting for stock (none expected yet)"
    ),
    error_example(
        400,
        "Unknown status",
        "status: Select a valid choice. shipped is not one of the available choices.",
        {"status": ["Select a valid choice. shipped is not one of the available choices."]},
    ),
    error_example(404, "Past the last page", "Invalid page."),
]

GET_ORDER = [
    response_example(
        200,
        "Order",
        {
            **ORDER,
            "lines": [
                {
                    "sku": "OAK-TABLE",
                    "product_name": "Oak table",
                    "qty": 1,
                    "unit_price": "640.00",
                    "amount": "640.00",
                    "batchref": None,
                },
                {
                    "sku": "RED-CHAIR",
                    "product_name": "Red dining chair",
                    "qty": 4,
                    "unit_price": "89.00",
                    "amount": "356.00",
                    "batchref": "depot-chairs-0412",
                },
            ],
        },
        "Its chairs allocated, its table waiting for stock",
    ),
    error_example(404, "Unknown order", "Unknown order web-9999."),
    MALFORMED_TOKEN,
]

LIST_PRODUCTS = [
    response_example(200, "Products", CHAIR, "Chairs in the warehouse and on a ship"),
    error_example(
        400,
        "Unreadable filter",
        "in_stock: Select a valid choice. maybe is not one of the available choices.",
        {"in_stock": ["Select a valid choice. maybe is not one of the available choices."]},
    ),
]

GET_PRODUCT = [
    response_example(200, "Product", CHAIR, "Chairs in the warehouse and on a ship"),
    error_example(404, "Unknown product", "Unknown product BLUE-SOFA."),
    MALFORMED_TOKEN,
]

READ_MODELS = [
    response_example(
        200,
        "Read models",
        {
            "name": "product_availability",
            "view": "product_availability",
            "last_refreshed_at": "2026-11-30T09:41:07.802492Z",
            "last_duration_ms": 5.2,
            "row_count": 1840,
            "refresh_count": 12873,
            "snapshot": "918236:918236:",
            "delta_row_count": 3,
            "base_rebuilt_at": "2026-11-30T09:40:12.210201Z",
            "base_duration_ms": 412.7,
            "base_row_count": 1838,
            "last_error": "",
            "last_error_at": None,
            "behind": False,
            "watcher_running": True,
            "watcher_heartbeat_at": "2026-11-30T09:41:08.001377Z",
            "replicas": [
                {
                    "name": "replica-1",
                    "healthy": True,
                    "lag_bytes": 0,
                    "lag_seconds": 0.0,
                    "last_refreshed_at": "2026-11-30T09:41:07.802492Z",
                },
                {
                    "name": "replica-2",
                    "healthy": False,
                    "lag_bytes": 1843200,
                    "lag_seconds": 74.3,
                    "last_refreshed_at": "2026-11-30T09:39:53.114020Z",
                },
            ],
        },
        "A view kept fresh by a running watcher, on two replicas, one of them behind",
    ),
]


ORDER_HISTORY = [
    response_example(
        200,
        "A line released when its batch was reduced",
        {
            "id": 118,
            "time": "2026-11-30T14:40:51.377Z",
            "event": "Deallocated",
            "actor": "clerk",
            "description": "Released 2 x RED-CHAIR from batch B-1"
            " because batch B-1 was reduced to 40.",
            "reason": "because batch B-1 was reduced to 40",
            "data": {"orderid": "ORD-1001", "sku": "RED-CHAIR", "qty": 2, "batchref": "B-1"},
        },
        "Each event of the order, oldest first, in words, with who acted",
    ),
]
