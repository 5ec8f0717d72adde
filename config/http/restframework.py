"""Classes that REST_FRAMEWORK's settings name. DRF imports them while it loads its own
views, so this module must not import views, generics or drf-spectacular."""

import codecs
import functools
import re
from collections.abc import Callable

from django.core.paginator import Paginator
from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import BasePermission
from rest_framework.utils import json

# Deeper than any body the API takes (an order's lines are 3 levels), far below the
# depth at which Python's json, which recurses once per level, raises RecursionError.
MAX_JSON_DEPTH = 32

# A JSON string (its escapes read whole, so that a quoted bracket is skipped) or a bracket.
_STRING_OR_BRACKET = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)


def nested_deeper_than(text: str, limit: int) -> bool:
    """Whether JSON ``text`` opens more than ``limit`` arrays or objects inside each other,
    read without parsing it (and so without recursing)."""
    depth = 0
    for match in _STRING_OR_BRACKET.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            if depth > limit:
                return True
        elif token in ("]", "}"):
            depth -= 1
    return False


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, refusing (400) a body nested deeper than MAX_JSON_DEPTH before it
    parses it: a thousand nested arrays would otherwise be a RecursionError, a 500."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = parsers.get_encoding(parser_context or {})
        try:
            text = codecs.getreader(encoding)(stream).read()
            if nested_deeper_than(text, MAX_JSON_DEPTH):
                message = f"nested more than {MAX_JSON_DEPTH} levels deep"
                raise ParseError(f"JSON parse error - {message}")
            parse_constant = json.strict_constant if self.strict else None
            return json.loads(text, parse_constant=parse_constant)
        except ValueError as error:
            raise ParseError(f"JSON parse error - {error}") from None


class HasRequiredPermissions(BasePermission):
    """Each view names the model permissions it needs (``required_permissions``);
    a view that names none is closed."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        required = getattr(view, "required_permissions", None)
        return required is not None and user.has_perms(required)


class CountedPaginator(Paginator):
    """Django's paginator, with the number of results from ``count`` (a callable) rather
    than from counting the object list: a list that knows how many it holds without
    counting them (the orders list's kept counts) pages a million rows as fast as ten."""

    def __init__(self, object_list, per_page, *, count: Callable[[], int], **kwargs) -> None:
        super().__init__(object_list, per_page, **kwargs)
        self._count = count

    @functools.cached_property
    def count(self) -> int:
        return self._count()


class Pagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def paginate_queryset(self, queryset, request, view=None):
        # A view that can tell how many results there are (``count_results()``) says so,
        # and its pages do not count them.
        count = getattr(view, "count_results", None)
        if count is not None:
            self.django_paginator_class = functools.partial(CountedPaginator, count=count)
        return super().paginate_queryset(queryset, request, view)

    def get_paginated_response_schema(self, schema: dict) -> dict:
        # drf-spectacular builds each list's example page from these examples, and DRF's
        # own point at api.example.org/accounts/: a one-page answer fits every list here.
        paginated = super().get_paginated_response_schema(schema)
        properties = paginated["properties"]
        properties["count"].update(example=1, description="How many match, on every page.")
        for name in ("next", "previous"):
            properties[name].update(
                example=None,
                description=f"The URL of the {name} page (the same filters), null if none.",
            )
        return paginated


class OneFormat(BaseContentNegotiation):
    """For views that speak one format (JSON): its parser and renderer, without reading
    Accept, which costs every request and can only end in the same format (DRF's docs,
    "Custom content negotiation")."""

    def select_parser(self, request, parsers):
        return parsers[0]

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type
