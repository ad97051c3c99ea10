"""Schemathesis over ``/api/openapi.json``: generated requests (valid and not) never get a 5xx,
and every answer matches the schema: its status, content type, headers and body.

Each operation runs against a real server on SQLite with a key of every scope and one
existing customer, so generated ids hit both the found and the not-found paths.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode, checks
from schemathesis.specs.openapi import checks as openapi_checks

from app.settings import Settings
from app.web.factory import create_app
from tests.api.support import bearer, make_key
from tests.support.servers import serve_in_thread


@pytest.fixture
def served(sqlite_api_settings: Settings) -> Iterator[tuple[str, str]]:
    api_settings = replace(sqlite_api_settings, api_rate_per_minute=1_000_000)
    key = make_key(api_settings)
    with serve_in_thread(create_app(api_settings)) as base:
        created = httpx.put(
            base + "/api/v1/customers/known", json={"email": "known@example.com"}, headers=bearer(key)
        )
        assert created.status_code == 201
        yield base, key


CHECKS = [
    checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.response_schema_conformance,
    openapi_checks.negative_data_rejection,
]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_api_keeps_to_its_schema(served: tuple[str, str], mode: GenerationMode) -> None:
    base, key = served
    schema = schemathesis.openapi.from_url(base + "/api/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    labels = {operation.label for operation in operations}
    assert {
        "GET /api/v1/customers",
        "GET /api/v1/customers/{external_id}",
        "PUT /api/v1/customers/{external_id}",
        "POST /api/v1/customers/{external_id}/sign-in-links",
    } <= labels
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        def keeps_to_it(case: Any) -> None:
            case.call_and_validate(base_url=base, headers=bearer(key), checks=CHECKS)

        keeps_to_it()
