"""openapi.yaml is generated from the code, valid, and what the API really does."""
import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from openapi_spec_validator import validate

from api.cli.commands import openapi_yaml
from conftest import ROOT


def test_committed_openapi_matches_the_code():
    assert (ROOT / "openapi.yaml").read_text() == openapi_yaml(), "openapi.yaml is stale: run `medkb openapi`"


def test_openapi_document_is_valid(openapi_spec):
    validate(openapi_spec)


def test_every_delivery_path_in_the_design_is_served(openapi_spec):
    design = ["/v1/products", "/v1/products/{id}", "/v1/products/{id}/mechanism", "/v1/products/{id}/faqs",
              "/v1/products/{id}/related", "/v1/conditions", "/v1/conditions/{id}", "/v1/articles",
              "/v1/articles/{id}", "/v1/articles/{id}/jsonld", "/v1/faqs", "/v1/sources/{id}",
              "/v1/people/{id}", "/v1/search", "/v1/feed", "/healthz", "/readyz"]
    assert set(design) <= set(openapi_spec["paths"])


def test_every_operation_has_a_summary_and_documents_its_errors(openapi_spec):
    for path, methods in openapi_spec["paths"].items():
        for method, operation in methods.items():
            if method == "parameters":
                continue
            assert operation.get("summary"), f"{method} {path}"
            if path.startswith("/v1/"):
                assert "default" in operation["responses"] or any(code.startswith("4") for code in operation["responses"])


def operations(spec):
    return [(path, method) for path, methods in spec["paths"].items() for method in methods if method != "parameters"]


# schemathesis's pytest plugin does not run under pytest 9, so each operation gets a
# Hypothesis test of its own through schemathesis's Python API instead.
@pytest.mark.parametrize("path,method", operations(yaml.safe_load((ROOT / "openapi.yaml").read_text())))
def test_api_honours_its_openapi_document(app, path, method):
    """Generated requests to every operation: never a 500, and every answer as documented."""
    operation = schemathesis.openapi.from_wsgi("/openapi.json", app)[path][method.upper()]

    @given(case=operation.as_strategy())
    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
    def check(case):
        # The WSGI test transport does not decode compressed bodies; compression has its own tests.
        case.call_and_validate(headers={"Accept-Encoding": "identity"})

    check()


def test_spec_yaml_round_trips():
    assert yaml.safe_load(openapi_yaml())["openapi"] == "3.0.3"


SPEC = yaml.safe_load((ROOT / "openapi.yaml").read_text())


def can_be_made_invalid(path, method):
    """Whether schemathesis has something to negate: a body or a query parameter. Path segments
    are plain strings, which every value fits; hostile ones are in test_hostile_input."""
    operation = SPEC["paths"][path][method]
    parameters = [SPEC["components"]["parameters"][p["$ref"].rsplit("/", 1)[1]] if "$ref" in p else p
                  for p in operation.get("parameters", [])]
    return "requestBody" in operation or any(p["in"] == "query" for p in parameters)


KEYED = [(path, method, mode) for path, method in operations(SPEC) if path.startswith(("/v1/editorial", "/v1/preview"))
         for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
         if mode == GenerationMode.POSITIVE or can_be_made_invalid(path, method)]


@pytest.fixture
def admin_key(content_db):
    from api.store.keys import KeyStore

    return KeyStore(content_db).create("admin", "schemathesis")[1]


@pytest.mark.parametrize("path,method,mode", KEYED)
def test_editorial_and_preview_never_answer_5xx(content_db, admin_key, path, method, mode):
    """Generated requests with a valid API key, fitting the spec and not: refused or served, never a 5xx."""
    from api.app import create_app

    app = create_app({"MEDKB_DB": str(content_db), "MEDKB_CHECK_INTERVAL": 0})
    operation = schemathesis.openapi.from_wsgi("/openapi.json", app)[path][method.upper()]
    headers = {"Authorization": f"Bearer {admin_key}", "Accept-Encoding": "identity"}

    @given(case=operation.as_strategy(generation_mode=mode, headers=headers))
    @settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
    def check(case):
        response = case.call()
        assert response.status_code < 500, (case.method, case.formatted_path, case.body, response.text[:500])

    check()
