"""URL converters shared by the API and the pages."""

from django.urls import converters, register_converter


class KeyConverter(converters.PathConverter):
    """A SKU or reference in a URL: like ``<path:>`` (a slash is allowed), but never a
    control character, which no key holds (domain.check_key) and which PostgreSQL cannot
    even compare (a NUL fails the query). Such a URL is simply not found."""

    regex = r"[^\x00-\x1f\x7f-\x9f]+"


register_converter(KeyConverter, "key")
