"""The order history names a line event as the cause of an allocation or a release only
when it is about the same SKU: one transaction may correct several lines of an order
(the admin's lines inline saves them together), and each line's stock moved for its own
correction."""

import importlib

from django.db import migrations

_BEFORE = importlib.import_module("orders_read.migrations.0021_order_history").ORDER_HISTORY
_ANY_EVENT_OF_THE_ORDER = """          AND same_order.name NOT IN
              ('OrderPlaced', 'OrderSubmitted', 'Allocated', 'Deallocated', 'OutOfStock')
"""
_LINE_EVENTS_OF_THE_SAME_SKU = (
    _ANY_EVENT_OF_THE_ORDER
    + """          AND (same_order.name NOT LIKE 'Line%'
               OR same_order.payload->>'sku' = event.payload->>'sku')
"""
)
assert _ANY_EVENT_OF_THE_ORDER in _BEFORE

BEFORE = _BEFORE.replace("CREATE VIEW", "CREATE OR REPLACE VIEW")
AFTER = BEFORE.replace(_ANY_EVENT_OF_THE_ORDER, _LINE_EVENTS_OF_THE_SAME_SKU)


class Migration(migrations.Migration):
    dependencies = [("orders_read", "0025_amounts_wide_enough_for_any_order")]

    operations = [migrations.RunSQL(AFTER, reverse_sql=BEFORE)]
