"""The OpenAPI document (GET /openapi.json) is generated from the code and matches what is deployed:
every route of template.yaml is documented, every documented operation is routed to a function that
answers it, and every error is documented in the one error shape."""

import difflib
import itertools
import json
import re

import pytest

from abacus_local.template import ROOT
from tests.conftest import answer, invoke, sample_event

DOCUMENT_PATH = "/openapi.json"


@pytest.fixture(scope="module")
def document() -> dict:
    status, body = answer(invoke("ResultsFunction", sample_event("get_openapi_document")))
    assert status == 200
    return body


def template_operations(template) -> dict[tuple[str, str], str]:
    """{(METHOD, /path/{param}): function} for every HttpApi route but the document's own."""
    return {(route.method, route.path): route.function for route in template.routes() if route.path != DOCUMENT_PATH}


def documented_operations(document: dict) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in document["paths"].items() for method in item}


def test_the_document_is_openapi_3_and_names_where_it_was_served(document):
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] == "Abacus"
    assert document["servers"] == [{"url": "https://abc123.execute-api.us-east-1.amazonaws.com"}]
    assert document["components"]["securitySchemes"]["adminKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "The project's admin key",
    }


def test_every_deployed_route_is_documented_and_nothing_else(document, template):
    assert documented_operations(document) == set(template_operations(template))


def test_every_documented_operation_is_answered_by_the_function_template_routes_it_to(document, template, tables):
    for (method, path), function in template_operations(template).items():
        concrete = re.sub(r"\{[^}]+\}", "some-key", path)
        event = sample_event("get_openapi_document")
        event["routeKey"] = event["requestContext"]["routeKey"] = f"{method} {path}"
        event["rawPath"] = event["requestContext"]["http"]["path"] = concrete
        event["requestContext"]["http"]["method"] = method
        result = invoke(function, event)
        # Without credentials every route refuses (the console's pages send to sign in), but none
        # may be missing from its function.
        missing = result["statusCode"] == 404 and "no route" in result.get("body", "")
        assert not missing, (function, method, path)


def test_admin_routes_declare_the_admin_key_and_app_routes_do_not(document):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            admin = path.startswith(("/experiments", "/webhooks"))
            assert ({"adminKey": []} in operation.get("security", [])) == admin, (method, path)


def test_every_error_is_documented_in_the_one_error_shape(document):
    error_ref = {"$ref": "#/components/schemas/ErrorBody"}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            codes = [code for code in operation["responses"] if code.startswith(("4", "5"))]
            if path.startswith("/console"):
                # The console's pages answer HTML, errors included, but for a query they do not take.
                html = [code for code in codes if code != "422"]
                assert all("text/html" in operation["responses"][code]["content"] for code in html), (method, path)
                codes = ["422"]
            elif path.startswith("/static/"):
                # posthog-js's bundles: public (no credentials), whatever the query; 404 when not built.
                assert set(codes) == {"404", "422"}, (method, path)
            else:
                assert {"401", "422"} <= set(codes), (method, path)
            for code in codes:
                assert operation["responses"][code]["content"]["application/json"]["schema"] == error_ref
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_request_bodies_are_the_validated_models(document):
    def body_ref(path, method="post"):
        return document["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]

    assert body_ref("/experiments") == {"$ref": "#/components/schemas/ExperimentCreate"}
    assert body_ref("/experiments/{key}", "patch") == {"$ref": "#/components/schemas/ExperimentPatch"}
    assert body_ref("/assign") == {"$ref": "#/components/schemas/AssignRequest"}
    assert body_ref("/events") == {"$ref": "#/components/schemas/EventBatch"}
    experiment = document["components"]["schemas"]["ExperimentCreate"]
    assert experiment["properties"]["key"]["pattern"] == "^[a-z0-9][a-z0-9_-]{0,63}$"
    assert experiment["additionalProperties"] is False


COMMITTED = ROOT / "docs" / "openapi.json"
REGENERATE = (
    "docs/openapi.json differs from the OpenAPI document the code generates: run `make openapi` and commit "
    "docs/openapi.json with the change, so that the API's change shows in review"
)


def test_the_committed_document_is_the_one_the_code_generates():
    from abacus.routes.openapi import committed_text

    generated = committed_text()
    committed = COMMITTED.read_text() if COMMITTED.exists() else ""
    if committed != generated:
        diff = difflib.unified_diff(
            committed.splitlines(), generated.splitlines(), "committed", "generated", n=1, lineterm=""
        )
        pytest.fail(REGENERATE + "\n" + "\n".join(itertools.islice(diff, 40)), pytrace=False)


def test_the_served_document_is_the_committed_one_with_its_server(document):
    assert {**document, "servers": [{"url": "/"}]} == json.loads(COMMITTED.read_text()), REGENERATE


def test_an_experiments_status_has_one_name(document):
    # The API's field is `status`: the README, the docs and the document's texts say so too, never "stage".
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    texts = [(str(page.relative_to(ROOT)), page.read_text()) for page in pages]
    for name, text in [*texts, ("the document", json.dumps(document))]:
        assert not re.findall(r".{0,30}\bstages?\b.{0,30}", text, re.IGNORECASE), name
