"""Refuses a request whose URL or one of whose headers is too long, before anything else
reads it: 414 or 431, as JSON with a ``message`` under /api/ and as a page elsewhere.

The server in front (granian) has its own, far higher limits (a request line of 65,534
characters, a head of about 400 KB, 100 headers), so that the answer to a request over
these is this one, in the API's shape; only a request past granian's gets granian's bare
414 or 431.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import loader

# RFC 9110 (4.1) recommends that every recipient support URIs of at least 8000 octets.
MAX_URL_LENGTH = 8000
# One header line ("Name: value"), as common servers and proxies allow by default.
MAX_HEADER_LENGTH = 8000


def _header_name(meta_key: str) -> str:
    """``HTTP_X_CONSISTENCY_TOKEN`` as the client wrote it: ``X-Consistency-Token``."""
    return meta_key.removeprefix("HTTP_").replace("_", "-").title()


def too_long(request: HttpRequest) -> tuple[int, str] | None:
    """(status, message) when the request's URL or a header is over its limit, else None."""
    url_length = len(request.get_full_path())  # the path percent-encoded, as sent
    if url_length > MAX_URL_LENGTH:
        return 414, (
            f"The URL is too long: {url_length} characters, at most {MAX_URL_LENGTH} are served."
        )
    for key, value in request.META.items():
        if key.startswith("HTTP_") or key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            name = _header_name(key)
            length = len(name) + len(": ") + len(value)
            if length > MAX_HEADER_LENGTH:
                return 431, (
                    f"The {name} header is too long: {length} characters,"
                    f" at most {MAX_HEADER_LENGTH} are served."
                )
    return None


class RequestLimitsMiddleware:
    """Answers a request over the limits itself; first in MIDDLEWARE, so that nothing
    (sessions, authentication, CSRF) reads such a request before it is refused."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        refused = too_long(request)
        if refused is None:
            return self.get_response(request)
        status, message = refused
        if request.path.startswith("/api/"):
            return JsonResponse({"message": message}, status=status)
        # Rendered like Django's own error pages: no request context (no user yet).
        page = loader.get_template("400.html").render({"message": message})
        return HttpResponse(page, status=status)
