"""What both sides' APIs share: errors as JSON, permissions, pagination, tokens for
integrations, and one URL serving a query (GET) and a command (POST)."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from django.core.exceptions import (
    PermissionDenied,
    RequestDataTooBig,
    SuspiciousOperation,
)
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from config.http.schema import error_example, request_example, response_example
from orders_write import domain

logger = logging.getLogger(__name__)

_DOMAIN_STATUS = (
    (domain.NotFound, status.HTTP_404_NOT_FOUND),
    (domain.Conflict, status.HTTP_409_CONFLICT),
    (domain.DomainError, status.HTTP_400_BAD_REQUEST),
)


class ErrorSerializer(serializers.Serializer):
    """Every 4xx answer: a human-readable message, and per-field errors for bad input."""

    message = serializers.CharField()
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), required=False
    )


# Refusals that come before an operation reads its input, the same for every operation.
_SHARED_ERROR_EXAMPLES = {
    401: [
        error_example(401, "No credentials", "Authentication credentials were not provided."),
        error_example(
            401,
            "Bearer scheme",
            "Unsupported authorization scheme Bearer: send the header 'Authorization: Token "
            "<key>' (POST /api/auth/token/ with your username and password gives the key).",
        ),
        error_example(401, "Wrong token", "Invalid token."),
    ],
    403: [
        error_example(403, "Not permitted", "You do not have permission to perform this action.")
    ],
}


def error_responses(descriptions: Mapping[int, str], *codes: int) -> dict:
    """drf-spectacular's responses for these error codes, each an ErrorSerializer."""
    return {
        code: OpenApiResponse(
            ErrorSerializer,
            description=descriptions[code],
            examples=_SHARED_ERROR_EXAMPLES.get(code, []),
        )
        for code in codes
    }


def _join(path: str, key: object) -> str:
    """The path of ``key`` under ``path``; non_field_errors name their parent."""
    if key == "non_field_errors":
        return path
    return f"{path}.{key}" if path else str(key)


# Both walks below loop instead of recursing, so that no error, however deeply it
# nests, can make answering it a RecursionError.


def _first_message(detail: object) -> str:
    """The first error in DRF's nested detail, as 'field: message'."""
    path = ""
    while True:
        if isinstance(detail, Mapping) and detail:
            key, detail = next(iter(detail.items()))
            path = _join(path, key)
            continue
        if isinstance(detail, list):
            index = next((index for index, value in enumerate(detail) if value), None)
            if index is not None:
                if isinstance(detail[index], (Mapping, list)):
                    path = f"{path}.{index}"
                detail = detail[index]
                continue
        return f"{path}: {detail}" if path else str(detail)


def flatten_errors(detail: object) -> dict[str, list[str]]:
    """DRF's nested errors as {"lines.0.qty": ["..."]}."""
    flat: dict[str, list[str]] = {}
    pending: list[tuple[str, object]] = [("", detail)]  # a stack: the next one last
    while pending:
        path, detail = pending.pop()
        if isinstance(detail, Mapping):
            children = [
                (_join(path, key) or "non_field_errors", value) for key, value in detail.items()
            ]
        elif isinstance(detail, list) and any(isinstance(item, (Mapping, list)) for item in detail):
            children = [(f"{path}.{index}", item) for index, item in enumerate(detail)]
        else:
            items = detail if isinstance(detail, list) else [detail]
            flat[path or "non_field_errors"] = [str(item) for item in items]
            continue
        pending.extend(reversed(children))
    return flat


def error_response(message: str, status_code: int, errors: dict | None = None) -> Response:
    body: dict[str, object] = {"message": message}
    if errors:
        body["errors"] = errors
    return Response(body, status=status_code)


def _domain_status(error: domain.DomainError) -> int:
    return next(code for kind, code in _DOMAIN_STATUS if isinstance(error, kind))


def refusal_response(error: domain.DomainError) -> Response:
    """A refused command: every refusal's message under its field (rule 11). Several
    refusals of one kind keep its status (404, 409); of mixed kinds they are a 400."""
    refusals = domain.each_refusal(error)
    errors: dict[str, list[str]] = {}
    for refusal in refusals:
        if refusal.field or len(refusals) > 1:
            errors.setdefault(refusal.field or "non_field_errors", []).append(refusal.message)
    codes = {_domain_status(refusal) for refusal in refusals}
    code = codes.pop() if len(codes) == 1 else status.HTTP_400_BAD_REQUEST
    return error_response(error.message, code, errors)


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """Map every refusal to SPEC.md's shape: {"message", "errors"?} and its status."""
    if isinstance(exc, domain.DomainError):
        return refusal_response(exc)
    if isinstance(exc, RequestDataTooBig):
        return error_response("Request body too large.", status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, SuspiciousOperation):
        return error_response("Bad request.", status.HTTP_400_BAD_REQUEST)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = {
            "message": _first_message(exc.detail),
            "errors": flatten_errors(exc.detail),
        }
    elif isinstance(exc, (Http404, PermissionDenied, exceptions.APIException)):
        detail = getattr(exc, "detail", None) or str(exc) or "Not found."
        response.data = {"message": str(detail)}
    return response


@csrf_exempt
def api_not_found(request, *args, **kwargs) -> JsonResponse:
    """Unknown paths under /api/ answer JSON too, whatever the method: like the API's
    views, it is exempt from Django's CSRF check (it changes nothing), which would
    otherwise answer a POST with its HTML 403 page."""
    return JsonResponse({"message": f"No API endpoint at {request.path}."}, status=404)


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know, so that a misspelt field is not silently ignored."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


def readable_values(serializer: serializers.Serializer) -> dict:
    """The values of the fields a refused serializer could read from its data, None for
    the ones it could not; a field that was left out and may be stays out. Lists of
    nested serializers (an order's lines) are read item by item."""
    return _readable(serializer.fields, serializer.initial_data)


def _readable(fields: Mapping[str, serializers.Field], data: object) -> dict:
    values: dict[str, object] = {}
    for name, field in fields.items():
        raw = field.get_value(data) if isinstance(data, Mapping) else serializers.empty
        if isinstance(field, serializers.ListSerializer) and isinstance(raw, list):
            values[name] = [_readable(field.child.fields, item) for item in raw]
            continue
        try:
            values[name] = field.run_validation(raw)
        except serializers.SkipField:
            pass
        except (exceptions.ValidationError, DjangoValidationError):
            values[name] = None
    return values


class FailedLoginThrottle(SimpleRateThrottle):
    """Counts failed logins per client address; only failures use up the allowance."""

    scope = "failed_login"

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def allow_request(self, request, view) -> bool:
        self.key = self.get_cache_key(request, view)
        self.history = self.cache.get(self.key, [])
        self.now = self.timer()
        while self.history and self.history[-1] <= self.now - self.duration:
            self.history.pop()
        return len(self.history) < self.num_requests

    def record_failure(self) -> None:
        self.history.insert(0, self.now)
        self.cache.set(self.key, self.history, self.duration)


class TokenView(APIView):
    """POST username and password, get the API token for ``Authorization: Token <key>``."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [FailedLoginThrottle]

    def get_throttles(self):
        # The same throttles that checked this request must record its failure.
        if not hasattr(self, "_throttles"):
            self._throttles = super().get_throttles()
        return self._throttles

    @extend_schema(
        operation_id="auth_token",
        summary="Get an API token",
        description=(
            "Trade a user's username and password for the key to send as "
            "`Authorization: Token <key>`. The same user always gets the same key. Failed "
            "attempts are limited per address (429 with the seconds to wait)."
        ),
        examples=[
            request_example(
                "Credentials", {"username": "shop-frontend", "password": "correct horse battery"}
            ),
            response_example(200, "Token", {"token": "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"}),
            error_example(
                400,
                "Wrong password",
                "Unable to log in with provided credentials.",
                {"non_field_errors": ["Unable to log in with provided credentials."]},
            ),
        ],
        request=AuthTokenSerializer,
        responses={
            200: inline_serializer("TokenOutput", {"token": serializers.CharField()}),
            400: ErrorSerializer,
            429: ErrorSerializer,
        },
        auth=[],
    )
    def post(self, request):
        serializer = AuthTokenSerializer(data=request.data, context={"request": request})
        if not serializer.is_valid():
            for throttle in self.get_throttles():
                throttle.record_failure()
            raise exceptions.ValidationError(serializer.errors)
        token, _ = Token.objects.get_or_create(user=serializer.validated_data["user"])
        return Response({"token": token.key})


def by_method(**views: type[APIView]):
    """One URL, a view per HTTP method: ``by_method(get=Query, post=Command)``."""

    def dispatch(self, request, *args, **kwargs):
        handler = self.handlers.get(request.method.lower())
        if handler is None:
            return super(Dispatcher, self).dispatch(request, *args, **kwargs)
        return handler(request, *args, **kwargs)

    attributes = {
        "views": views,
        "handlers": {method: view.as_view() for method, view in views.items()},
        "dispatch": dispatch,
        "permission_classes": [AllowAny],  # each method's own view checks
        **{method: None for method in views},
    }
    Dispatcher = type(
        "By" + "".join(view.__name__ for view in views.values()), (APIView,), attributes
    )
    return Dispatcher.as_view()
