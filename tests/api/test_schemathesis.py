"""Property-based API tests: Schemathesis generates requests for every operation of the
schema the app serves at /api/schema/ and sends them, as a superuser, to the WSGI app on
the test database. No answer may be a 5xx, and every answer must match the schema: its
status code, content type, body and headers.

The stateful test follows the schema's OpenAPI links from each command to the queries
and commands that use its result (POST /api/orders -> GET /api/orders/{reference},
submit, cancel; POST /api/allocate -> GET /api/allocations/{orderid}; ...), carrying the
command's X-Consistency-Token: a query that directly follows its command must answer 200
with what the command wrote, which no single call can show.

``pytest -s`` prints how many cases each operation ran and the statuses they got, and how
many steps followed each link; SCHEMATHESIS_MAX_EXAMPLES=500 searches harder than CI does,
SCHEMATHESIS_STATEFUL_SCENARIOS=200 and SCHEMATHESIS_STATEFUL_STEPS=30 likewise.
"""

import os
from collections import Counter
from decimal import Decimal

import pytest
import schemathesis
from django.core.cache import cache
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.core.transforms import UNRESOLVABLE
from schemathesis.generation.meta import TestPhase
from schemathesis.generation.stateful.state_machine import StepInput, StepOutput
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.stateful import OperationTransitions, transition
from schemathesis.transport.serialization import quote_all

from config.wsgi import application
from orders_read import rebuilds
from orders_read.read_models import READ_MODELS
from orders_write import commands, services
from tests.database import empty_write_tables
from tests.factories import add_batch, make_user, place

pytestmark = pytest.mark.django_db(transaction=True)

MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "30"))
STATEFUL_SCENARIOS = int(os.environ.get("SCHEMATHESIS_STATEFUL_SCENARIOS", "25"))
STATEFUL_STEPS = int(os.environ.get("SCHEMATHESIS_STATEFUL_STEPS", "10"))
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


def _naming_seeded(body, orderid: str | None):
    """A JSON body whose SKUs are the seeded one and whose order id is ``orderid`` (None:
    the generated one)."""
    if not isinstance(body, dict):
        return body
    body = {**body}
    for name, value in (("sku", SEEDED["sku"]), ("orderid", orderid)):
        if value is not None and isinstance(body.get(name), str):
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


KEYS = {"sku", "ref", "reference", "orderid"}


def _plausible(value, name: str = ""):
    """``value`` with what the rules refuse mended: keys without control characters and at
    most 255 long, text without NUL, quantities 1 to 5, prices of two decimal places, every
    string non-blank. Its strings stay as strange as generated otherwise."""
    if isinstance(value, dict):
        return {key: _plausible(item, key) for key, item in value.items()}
    if isinstance(value, list):
        return [_plausible(item, name) for item in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int) and name == "qty":
        return abs(value) % 5 + 1
    if isinstance(value, (int, float)) and name == "price":
        return float(round(Decimal(abs(value) % 1000).quantize(Decimal("0.01")), 2))
    if isinstance(value, str):
        if name in KEYS:
            value = "".join(char for char in value if char.isprintable())[:255]
        value = value.replace("\x00", "")
        return value if value.strip() else f"{name or 'x'}-{len(value)}"
    return value


def _one_line(body):
    """An order's body with one line: a placed order that can be submitted."""
    if isinstance(body, dict) and isinstance(body.get("lines"), list):
        return {**body, "lines": body["lines"][:1] or [{"sku": SEEDED["sku"], "qty": 1}]}
    return body


@schema.hook
def flatmap_body(context, body):
    # As generated; naming the seeded order or a new one that allocate creates; or mended
    # so that the command succeeds more often (new SKUs, or the seeded one).
    return st.sampled_from(
        [
            body,
            _naming_seeded(body, "o1"),
            _naming_seeded(body, "o9"),
            _plausible(body),
            _plausible(_one_line(_naming_seeded(body, None))),
        ]
    )


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


def open_shop() -> None:
    """The SEEDED shop: one product, its batch, an allocated order and a pending one."""
    services.create_product(commands.CreateProduct("LAMP", "Desk lamp", Decimal("12.50")))
    add_batch("lamps", "LAMP", 100)
    place("o1", ("LAMP", 2))
    services.submit_order(commands.SubmitOrder("o1"))  # allocated
    place("o2", ("LAMP", 1))  # pending


@pytest.fixture
def superuser_headers():
    """The superuser's token header, on the SEEDED shop."""
    cache.clear()  # the token endpoint's failed-login throttle
    token = Token.objects.create(user=make_user("superuser"))
    open_shop()
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


# --- stateful: commands linked to the queries that read them ---------------------------


def _header(output: StepOutput, name: str) -> str | None:
    values = output.response.headers.get(name.lower())  # lower-case names, lists of values
    return values[0] if values else None


def _events(output: StepOutput, name: str) -> list[dict]:
    body = output.response.json()
    return [event["data"] for event in body.get("events", []) if event["name"] == name]


def _skus(lines: list[dict]) -> set[str]:
    return {line["sku"] for line in lines}


def _shows_the_write(command: StepOutput, query: StepOutput) -> bool:
    """Whether ``query``, sent right after ``command`` along one of its links, shows what
    the command wrote."""
    sent = command.case.body if isinstance(command.case.body, dict) else {}
    body = query.response.json() if query.response.status_code == 200 else None
    allocated = {(event["sku"], event["batchref"]) for event in _events(command, "Allocated")}
    match (command.case.operation.label, query.case.operation.label):
        case ("POST /api/products", "GET /api/products/{sku}"):
            return body is not None and (body["sku"], body["name"]) == (sent["sku"], sent["name"])
        case ("POST /api/batches", "GET /api/products/{sku}"):
            return (
                body is not None and body["sku"] == sent["sku"] and body["purchased"] >= sent["qty"]
            )
        case ("POST /api/orders", "GET /api/orders/{reference}"):
            return body is not None and (
                body["reference"],
                body["customer_name"],
                body["shipping_address"],
                body["status"],
                _skus(body["lines"]),
            ) == (
                command.response.json()["reference"],
                sent["customer"],
                sent["shipping_address"],
                "pending",
                _skus(sent["lines"]),
            )
        case ("POST /api/orders/{reference}/submit", "GET /api/orders/{reference}"):
            return body is not None and body["status"] == "submitted"
        case ("POST /api/orders/{reference}/cancel", "GET /api/orders/{reference}"):
            return body is not None and (body["status"], body["allocated_line_count"]) == (
                "cancelled",
                0,
            )
        case (
            "POST /api/orders/{reference}/submit" | "POST /api/allocate",
            "GET /api/allocations/{orderid}",
        ):
            # 404 when no line found a batch (out of stock).
            shown = {(row["sku"], row["batchref"]) for row in body or []}
            return allocated <= shown and (body is not None or not allocated)
        case ("POST /api/allocate", "GET /api/orders/{reference}"):
            return body is not None and sent["sku"] in _skus(body["lines"])
        case ("POST /api/deallocate", "GET /api/orders/{reference}"):
            lines = {line["sku"]: line["batchref"] for line in body["lines"]} if body else {}
            return body is not None and lines.get(sent["sku"], "gone") is None
        case ("POST /api/orders/{reference}/lines", "GET /api/orders/{reference}"):
            return body is not None and sent["sku"] in _skus(body["lines"])
        case ("POST /api/orders/{reference}/lines/{sku}", "GET /api/orders/{reference}"):
            quantities = {line["sku"]: line["qty"] for line in body["lines"]} if body else {}
            return quantities.get(command.case.path_parameters["sku"]) == sent["qty"]
        case ("POST /api/orders/{reference}/lines/{sku}/remove", "GET /api/orders/{reference}"):
            sku = command.case.path_parameters["sku"]
            return body is not None and sku not in _skus(body["lines"])
    raise AssertionError(
        f"no check for {query.case.operation.label} after {command.case.operation.label}"
    )


STEPS: Counter[str] = Counter()
STEP_STATUSES: dict[str, Counter[int]] = {}
READ_BACKS: Counter[str] = Counter()  # link -> queries sent right after their command
ACCEPTED: Counter[str] = Counter()  # command -> times it was accepted


def _linked_values(link, command: StepOutput) -> dict[str, dict]:
    """The values ``link`` takes from ``command``'s request and response, per container;
    path parameters percent-encoded, as Schemathesis sends them (those taken from the
    command's path already are)."""
    values: dict[str, dict] = {}
    for container, parameters in link.extract(command).parameters.items():
        values[container] = {}
        for name, extracted in parameters.items():
            if not isinstance(extracted.value, Ok) or extracted.value.ok() is UNRESOLVABLE:
                continue
            value = extracted.value.ok()
            if container == "path_parameters" and not extracted.definition.startswith(
                "$request.path."
            ):
                value = quote_all({name: value})[name]
            values[container][name] = value
    return values


def linked_workflow(headers: dict[str, str]) -> type:
    """The schema's state machine, calling as the superuser with the same checks as the
    test above. After each accepted command it also follows every link from the command
    to a query at once, with the command's consistency token, and checks that the answer
    shows the write."""

    machine = schema.as_state_machine()

    class Workflow(machine):
        # Schemathesis' dependency analysis reads shipping_address as a reference to an
        # unknown "Shipping" resource and so never starts a scenario by placing an order;
        # this rule does, as it does for every other command.
        random_place_order = transition(
            name="RANDOM -> POST /api/orders",
            target=Bundle("catch_all"),
            precondition=lambda machine: True,
            input=schema["/api/orders"]["POST"]
            .as_strategy(phase=TestPhase.STATEFUL)
            .map(StepInput.initial),
        )

        def setup(self) -> None:
            # Each scenario starts from the same shop, so that Hypothesis can replay it.
            empty_write_tables()
            open_shop()
            # Rebuilt, not refreshed: TRUNCATE leaves no dirty keys, so a refresh would
            # keep the rows of an earlier scenario's orders (its "o2" lines beside this one's).
            rebuilds.rebuild(READ_MODELS, timeout=0)

        def get_call_kwargs(self, case) -> dict:
            return {"headers": headers}

        def validate_response(self, response, case, additional_checks=None, **kwargs) -> None:
            case.validate_response(response, checks=CHECKS, headers=headers)

        def step(self, input: StepInput) -> StepOutput:
            output = super().step(input)
            label = (
                input.transition.id
                if input.transition
                else f"RANDOM -> {input.case.operation.label}"
            )
            STEPS[label] += 1
            STEP_STATUSES.setdefault(label, Counter())[output.response.status_code] += 1
            if output.response.status_code in (201, 202):
                ACCEPTED[input.case.operation.label] += 1
                self.read_back(output)
            return output

        def read_back(self, command: StepOutput) -> None:
            source = command.case.operation.label
            for link in self._transitions.operations.get(source, OperationTransitions()).outgoing:
                if link.target.method.upper() != "GET" or link.is_inferred:
                    continue
                values = _linked_values(link, command)
                case = link.target.Case(
                    path_parameters=values.get("path_parameters"), headers=values.get("headers")
                )
                assert case.headers["X-Consistency-Token"] == _header(
                    command, "X-Consistency-Token"
                )
                response = case.call(headers=headers)
                self.validate_response(response, case)
                query = StepOutput(response, case)
                READ_BACKS[link.full_name] += 1
                assert _header(query, "X-Read-Model-Stale") != "true"
                assert _shows_the_write(command, query), (
                    f"{case.operation.label} after {source} {command.case.body!r}: "
                    f"{response.status_code} {response.text[:500]}"
                )

    return Workflow


@pytest.fixture
def _report_step_counts():
    yield
    width = max(map(len, STEPS), default=0)
    print(
        f"\nStateful steps per link ({STATEFUL_SCENARIOS} scenarios of up to "
        f"{STATEFUL_STEPS} steps):"
    )
    for label, count in sorted(STEPS.items()):
        statuses = ", ".join(f"{code}: {n}" for code, n in sorted(STEP_STATUSES[label].items()))
        print(f"  {label:<{width}}  {count:>5}  ({statuses})")
    print(f"  {'total':<{width}}  {sum(STEPS.values()):>5}  steps")
    print("Queries sent right after their command, with its token, that showed its write:")
    for label, count in sorted(READ_BACKS.items()):
        print(f"  {label:<{width}}  {count:>5}")
    print(f"  {'total':<{width}}  {sum(READ_BACKS.values()):>5}")


def test_linked_queries_show_each_command_s_write(superuser_headers, _report_step_counts):
    workflow = linked_workflow(superuser_headers)
    workflow.run(
        settings=settings(
            max_examples=STATEFUL_SCENARIOS,
            stateful_step_count=STATEFUL_STEPS,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
    )
    # The links were followed, and each link from an accepted command to a query was
    # read back.
    assert sum(count for label, count in STEPS.items() if not label.startswith("RANDOM")) > 0
    query_links = {
        link.full_name
        for command in ACCEPTED
        for link in workflow._transitions.operations[command].outgoing
        if link.target.method.upper() == "GET" and not link.is_inferred
    }
    assert query_links
    assert set(READ_BACKS) == query_links
