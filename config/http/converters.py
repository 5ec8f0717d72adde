"""URL converters shared by the API and the pages."""

from django.urls import converters, register_converter


class KeyConverter(converters.PathConverter):
    """A SKU or reference in a URL: like ``<path:>`` (a slash is allowed), but never a
    control character, which no key holds (domain.check_key) and which PostgreSQL cannot
    even compare (a NUL fails the query). Such a URL is simply not found."""

    regex = r"[^\x00-\x1f\x7f-\x9f]+"


register_converter(KeyConverter, "key")


class OrderOfLinesConverter(KeyConverter):
    """An order's reference before ``/lines`` (/orders/<reference>/lines/<sku>/...): a key
    up to its first "/lines" part. References never hold one (domain.check_order_reference),
    so a SKU with slashes, or with "/lines/" in it, stays whole after it."""

    regex = r"(?:(?!/lines(?:/|$))[^\x00-\x1f\x7f-\x9f])+"


register_converter(OrderOfLinesConverter, "order_of_lines")
