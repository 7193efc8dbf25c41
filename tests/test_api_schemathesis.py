"""Property-based tests of the served OpenAPI document with schemathesis.

Schemathesis reads /api/v1/openapi.json from the app (in-process, WSGI), generates valid
and invalid requests for every operation, sends them with a live bearer token, and checks:
no 5xx, every status documented, JSON content type, the body matches the documented
schema, every body is the {code, message, data} envelope with code == HTTP status, valid
data is accepted (ST202, ``positive_data_acceptance``) and invalid data refused (ST201,
``negative_data_rejection``). The batch endpoints answer 200 with a code per record: a record
that fails the operation's ``x-record-schema`` must be answered 400 in ``results``.
"""

from __future__ import annotations

import jsonschema_rs
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

from . import factories
from .api_helpers import API_PATHS, token_for

PATHS = API_PATHS


@schemathesis.check
def envelope_matches_status(ctx, response, case) -> None:
    payload = response.json()
    assert isinstance(payload, dict) and set(payload) == {"code", "message", "data"}, payload
    assert payload["code"] == str(response.status_code), payload


@schemathesis.check
def invalid_records_are_answered_400(ctx, response, case) -> None:
    record_schema = case.operation.definition.raw.get("x-record-schema")
    if record_schema is None or response.status_code != 200:
        return
    validator = jsonschema_rs.Draft202012Validator(record_schema, validate_formats=True)
    results = response.json()["data"]["results"]
    assert len(results) == len(case.body["records"])
    for record, result in zip(case.body["records"], results, strict=True):
        if not validator.is_valid(record):
            assert result["code"] == "400", (record, result)


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    envelope_matches_status,
    positive_data_acceptance,  # ST202
    negative_data_rejection,  # ST201
    invalid_records_are_answered_400,
]


@pytest.fixture
def bearer():
    unit = factories.make_unit()
    factories.make_cylinder(unit)
    api_client, _ = factories.make_api_client(unit)
    return {"Authorization": f"Bearer {token_for(api_client)}"}


def test_the_document_lists_exactly_the_served_operations(app):
    loaded = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    assert sorted(loaded) == sorted(PATHS)


# schemathesis' own pytest plugin does not run under pytest 9 yet, so the operations'
# hypothesis strategies are driven directly: same generation, same checks.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("path", PATHS)
def test_api_conforms_to_its_openapi_document(app, bearer, path, mode):
    operation = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)[path]["POST"]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=15,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case) -> None:
        response = case.call(headers=bearer)
        case.validate_response(response, checks=CHECKS)

    run()
