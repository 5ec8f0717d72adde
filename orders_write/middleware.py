"""Commands issued while a request is served are recorded as its user's (rule 9)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from orders_write import services


class ActorMiddleware:
    """Run each request acting as its user: the staff member on the pages and in the
    admin, or the integration whose API token it is.

    The user is read when an event is recorded, not when the request arrives: the API
    authenticates a token in its view, after the middleware has run.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with services.acting_as(lambda: _username(request)):
            return self.get_response(request)


def _username(request: HttpRequest) -> str:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return services.SYSTEM
    return user.get_username()
