"""The API's docs as an integrator meets them at /api/docs/: the served OpenAPI schema
walks through getting started, and every operation, those added later included, has a
summary and examples of its request and its answer that the schema itself accepts."""

import copy

import jsonschema
import pytest
from django.test import Client

from tests.factories import client_for

pytestmark = pytest.mark.django_db

METHODS = {"get", "put", "post", "patch", "delete"}


@pytest.fixture(scope="module")
def schema(django_db_blocker) -> dict:
    with django_db_blocker.unblock():
        response = Client().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def operations(schema: dict):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield f"{method.upper()} {path}", operation


def json_content(part: dict) -> dict:
    return part.get("content", {}).get("application/json", {})


def success(operation: dict) -> tuple[str, dict]:
    code = min(code for code in operation["responses"] if code.startswith("2"))
    return code, operation["responses"][code]


def json_schema(node: object, components: dict, depth: int = 0) -> object:
    """OpenAPI 3.0's schema ``node`` as plain JSON Schema: references inlined, and
    ``nullable`` spelt as a null alternative."""
    assert depth < 50, "a schema that refers to itself"
    if isinstance(node, list):
        return [json_schema(item, components, depth + 1) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = node["$ref"].removeprefix("#/components/schemas/")
        return json_schema(components[name], components, depth + 1)
    converted = {key: json_schema(value, components, depth + 1) for key, value in node.items()}
    if converted.pop("nullable", False):
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


def examples_against_their_schemas(schema: dict):
    """(where, example value, JSON Schema) for each request and response example."""
    components = schema["components"]["schemas"]
    for label, operation in operations(schema):
        parts = [("request", operation.get("requestBody", {}))]
        parts += [(f"answer {code}", response) for code, response in operation["responses"].items()]
        for part_name, part in parts:
            content = json_content(part)
            for name, example in content.get("examples", {}).items():
                yield (
                    f"{label} {part_name} {name}",
                    example["value"],
                    json_schema(copy.deepcopy(content["schema"]), components),
                )


def test_every_operation_has_a_summary_and_examples_of_its_request_and_answer(schema):
    missing = []
    for label, operation in operations(schema):
        if not operation.get("summary", "").strip():
            missing.append(f"{label}: summary")
        request = json_content(operation.get("requestBody", {}))
        if request and not request.get("examples"):
            missing.append(f"{label}: request example")
        code, answer = success(operation)
        if not json_content(answer).get("examples"):
            missing.append(f"{label}: example of its {code} answer")

    assert not missing, "\n".join(missing)


def test_every_summary_is_its_own(schema):
    summaries = [operation.get("summary") for _, operation in operations(schema)]

    assert len(set(summaries)) == len(summaries)


def test_every_example_is_valid_by_the_schema_it_illustrates(schema):
    checked, invalid = 0, []
    for where, value, value_schema in examples_against_their_schemas(schema):
        checked += 1
        error = jsonschema.exceptions.best_match(
            jsonschema.Draft202012Validator(value_schema).iter_errors(value)
        )
        if error is not None:
            invalid.append(f"{where}: {error.message} at {list(error.absolute_path)}")

    assert checked > 40  # requests, answers and refusals of every operation
    assert not invalid, "\n".join(invalid)


def test_the_check_of_examples_catches_a_misspelt_field(schema):
    broken = copy.deepcopy(schema)
    content = json_content(broken["paths"]["/api/allocate"]["post"]["requestBody"])
    next(iter(content["examples"].values()))["value"]["quantity"] = 1

    invalid = [
        where
        for where, value, value_schema in examples_against_their_schemas(broken)
        if not jsonschema.Draft202012Validator(value_schema).is_valid(value)
    ]

    assert invalid == ["POST /api/allocate request ALine"]


def test_the_description_walks_from_a_token_to_an_allocation_read_back(schema):
    description = schema["info"]["description"]
    steps = [
        "## Getting started",
        "POST http://127.0.0.1:8000/api/auth/token/",
        '{"token": ',
        "Authorization: Token <key>",
        "POST http://127.0.0.1:8000/api/allocate",
        "HTTP/1.1 202 Accepted",
        "X-Consistency-Token: qm1-",
        "curl -si http://127.0.0.1:8000/api/allocations/web-1042",
        "-H 'X-Consistency-Token: qm1-",
        "HTTP/1.1 200 OK",
        "X-Read-Model-Stale: true",
    ]

    # Each step after the one before it.
    position, missing = 0, []
    for step in steps:
        found = description.find(step, position)
        if found < 0:
            missing.append(step)
        else:
            position = found + len(step)

    assert not missing


def test_the_description_explains_errors_pages_and_filters(schema):
    description = schema["info"]["description"]

    for status in ("| 400 |", "| 401 |", "| 403 |", "| 404 |", "| 409 |"):
        assert status in description
    for word in ('"count", "next", "previous", "results"', "`page_size`", "`status`"):
        assert word in description
    for name in ("waiting", "customer", "search", "ordering", "in_stock"):
        assert f"`{name}`" in description


@pytest.mark.parametrize(
    ("role", "header"),
    [
        ("anonymous", None),
        ("anonymous", "Bearer 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"),
        ("anonymous", "Token 0000000000000000000000000000000000000000"),
        ("viewer", None),
    ],
)
def test_the_docs_quote_the_refusals_the_api_gives(schema, role, header):
    client = client_for(role)
    if header:
        client.credentials(HTTP_AUTHORIZATION=header)

    response = client.post("/api/allocate", {"orderid": "web-1", "sku": "X", "qty": 1})

    message = response.json()["message"]
    documented = json_content(
        schema["paths"]["/api/allocate"]["post"]["responses"][str(response.status_code)]
    )["examples"]
    assert message in [example["value"]["message"] for example in documented.values()]
    assert f'{{"message": "{message}"}}' in schema["info"]["description"]
