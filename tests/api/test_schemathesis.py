"""Property-based API tests: Schemathesis generates requests for every operation of the
schema the app serves at /api/schema/ and sends them, as a superuser, to the WSGI app on
the test database. No answer may be a 5xx, and every answer must match the schema: its
status code, content type, body and headers.

``pytest -s`` prints how many cases each operation ran and the statuses they got;
SCHEMATHESIS_MAX_EXAMPLES=500 searches harder than CI does.
"""

import os
from collections import Counter
from decimal import Decimal

import pytest
import schemathesis
from django.core.cache import cache
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from config.wsgi import application
from orders_write import commands, services
from tests.conftest import make_user
from tests.write.conftest import add_batch, place

pytestmark = pytest.mark.django_db(transaction=True)

MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "30"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]

schema = schemathesis.openapi.from_wsgi(
    "/api/schema/", application, headers={"Accept": "application/json"}
)

# What the seeded data holds. Many generated cases name it instead of a random string, so
# that they get past "unknown order" (404) or "invalid sku" (400) to a success.
SEEDED = {"orderid": "o1", "reference": "o2", "ref": "lamps", "sku": "LAMP"}


def _naming_seeded(body, orderid):
    """A JSON body whose SKUs are the seeded one and whose order id is ``orderid``."""
    if not isinstance(body, dict):
        return body
    body = {**body}
    for name, value in (("sku", SEEDED["sku"]), ("orderid", orderid)):
        if isinstance(body.get(name), str):
            body[name] = value
    if isinstance(body.get("lines"), list):
        body["lines"] = [
            {**line, "sku": SEEDED["sku"]}
            if isinstance(line, dict) and isinstance(line.get("sku"), str)
            else line
            for line in body["lines"]
        ]
    return body


@schema.hook
def flatmap_path_parameters(context, path_parameters):
    if not path_parameters:
        return st.just(path_parameters)
    seeded = {name: SEEDED[name] for name in path_parameters if name in SEEDED}
    return st.sampled_from([path_parameters, {**path_parameters, **seeded}])


@schema.hook
def flatmap_body(context, body):
    # The seeded order, or a new one that allocate creates.
    return st.sampled_from([body, _naming_seeded(body, "o1"), _naming_seeded(body, "o9")])


CASES: Counter[str] = Counter()
STATUSES: dict[str, Counter[int]] = {}


@pytest.fixture(scope="module", autouse=True)
def _report_case_counts():
    yield
    width = max(map(len, CASES), default=0)
    print(f"\nSchemathesis cases per operation (max_examples={MAX_EXAMPLES} when fuzzing):")
    for label, count in sorted(CASES.items()):
        statuses = ", ".join(f"{code}: {n}" for code, n in sorted(STATUSES[label].items()))
        print(f"  {label:<{width}}  {count:>5}  ({statuses})")
    print(f"  {'total':<{width}}  {sum(CASES.values()):>5}  in {len(CASES)} operations")


@pytest.fixture
def superuser_headers():
    """The superuser's token header, on a shop of one product, its batch and two orders."""
    cache.clear()  # the token endpoint's failed-login throttle
    token = Token.objects.create(user=make_user("superuser"))
    services.create_product(commands.CreateProduct("LAMP", "Desk lamp", Decimal("12.50")))
    add_batch("lamps", "LAMP", 100)
    place("o1", ("LAMP", 2))
    services.submit_order(commands.SubmitOrder("o1"))  # allocated
    place("o2", ("LAMP", 1))  # pending
    yield {"Authorization": f"Token {token.key}"}
    cache.clear()


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_api_answers_within_its_schema_and_never_fails(case, superuser_headers):
    label = case.operation.label
    CASES[label] += 1
    response = case.call(headers=superuser_headers)
    STATUSES.setdefault(label, Counter())[response.status_code] += 1
    case.validate_response(response, checks=CHECKS, headers=superuser_headers)
