"""Property-based tests of the served OpenAPI document: generated requests to every operation.

Schemathesis reads the spec the app serves (``/openapi.json``) and generates
requests for each operation, both ones that fit the spec and ones that do not
(wrong types, missing fields, out-of-range values). Each generated request is
sent with no key, then with a key of each role, to an app whose store (SQLite
and PostgreSQL) is reset before each test to a few sounds, uploads, uses and a
removal, so that generated ids sometimes name real rows. Every answer must be documented:
no 5xx, a status the operation lists, the content type and headers it
declares, and a body that validates against its schema (checked by
Schemathesis and again by ``api_fixtures.check_against_spec``).

Generation is derandomized, so every run sends the same requests and CI is
stable; the example counts are modest, for a run of well under two minutes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import MetaData, inspect, text, update

from api import create_app
import hostile_corpus as corpus
from api_fixtures import ApiHarness, check_against_spec, make_harness, seed_sound, seed_upload

schemathesis = pytest.importorskip("schemathesis")

from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from audiofp.services import create_key  # noqa: E402
from audiofp.store.models import ApiKey  # noqa: E402

#: Examples per operation and backend, for each generation mode; every example is sent five times.
#: ``AUDIOFP_PROPERTY_EXAMPLES=8`` multiplies them, for a deeper (slower) search run by hand.
SCALE = max(1, int(os.environ.get("AUDIOFP_PROPERTY_EXAMPLES", "1")))
EXAMPLES = {GenerationMode.POSITIVE: 10 * SCALE, GenerationMode.NEGATIVE: 5 * SCALE}

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]

AUTH_HEADERS = ("Authorization", "X-API-Key")
ROLES = ("pipeline", "investigator", "reviewer", "admin")


def _served_schema() -> Any:
    """The document the app serves (no store is opened to serve it)."""
    app = create_app({"DATABASE_URL": "sqlite:///:memory:", "MIGRATE": False})
    return schemathesis.openapi.from_wsgi("/openapi.json", app)


SCHEMA = _served_schema()
OPERATIONS = {op.label: op for op in (result.ok() for result in SCHEMA.get_all_operations())}


#: Tables a reset keeps: the schema's revision and the index's fingerprint parameters.
KEPT_TABLES = {"alembic_version", "index_meta"}


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def served(request, tmp_path_factory) -> Iterator[ApiHarness]:
    """One app and database per backend (and xdist worker); each test resets it (see ``world``)."""
    with corpus.scratch_database(request.param, tmp_path_factory.mktemp("properties-db")) as url:
        h = make_harness(url)
        try:
            yield h
        finally:
            h.app.extensions["audiofp"].close()


def _empty(h: ApiHarness) -> None:
    """Delete every row and restart every id, as on a freshly migrated store."""
    tables = MetaData()
    tables.reflect(h.store.engine)
    doomed = [t for t in tables.sorted_tables if t.name not in KEPT_TABLES]
    with h.store.engine.begin() as conn:
        if h.store.dialect == "postgresql":
            names = ", ".join(conn.dialect.identifier_preparer.quote(t.name) for t in doomed)
            conn.execute(text(f"TRUNCATE TABLE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(doomed):
                conn.execute(table.delete())
            if "sqlite_sequence" in inspect(conn).get_table_names():
                conn.execute(text("DELETE FROM sqlite_sequence"))


@pytest.fixture
def world(served) -> ApiHarness:
    """The app on a store reset to the same rows before every test (so a failing example replays alone):
    a key per role, sounds 1-2, uploads c-1..c-3 of accounts acct-1..3 with their uses, one removal."""
    h = served
    _empty(h)
    h.keys.update({role: create_key(h.store, name=f"test-{role}", role=role).secret for role in ROLES})
    sound_a, sound_b = seed_sound(h.store, "A"), seed_sound(h.store, "B")
    seed_upload(h.store, "c-1", "acct-1", {sound_a: "original"}, minutes=0)
    seed_upload(h.store, "c-2", "acct-2", {sound_a: "reuse", sound_b: "reuse"}, minutes=5)
    seed_upload(h.store, "c-3", "acct-3", {sound_b: "original"}, minutes=10)
    removed = h.client.post("/v1/removals", json={"content_id": "c-2", "policy_label": "p", "reason": "r"},
                            headers=h.auth("pipeline"))
    assert removed.status_code == 201, removed.get_json()
    return h


def _known_ids(operation: Any) -> dict[str, Any] | None:
    """Path parameters naming seeded rows (ids 1-3, accounts acct-1..3), so some requests reach real data."""
    params = {p.name for p in operation.path_parameters}
    if not params:
        return None
    return {name: ("acct-1" if name == "account_id" else 1) for name in params}


def _cases(operation: Any, mode: GenerationMode) -> st.SearchStrategy[Any]:
    generated = operation.as_strategy(generation_mode=mode)
    known = _known_ids(operation)
    if known is None or mode is GenerationMode.NEGATIVE:
        return generated
    return st.one_of(generated, operation.as_strategy(generation_mode=mode, path_parameters=known))


def _send(h: ApiHarness, case: Any, role: str | None) -> None:
    headers = {k: v for k, v in (case.headers or {}).items() if k not in AUTH_HEADERS}
    case.headers = headers
    if role is not None:
        case.headers = {**headers, **h.auth(role)}
    response = case.call(app=h.app)
    context = f"{case.method} {case.formatted_path} as {role or 'no key'}"
    assert response.status_code < 500, f"{context}: {response.status_code} {response.text[:500]}"
    case.validate_response(response, checks=CHECKS)
    media = response.headers.get("Content-Type", "").split(";")[0].strip()
    if media in ("application/json", "application/problem+json"):
        body = json.loads(response.text, parse_constant=lambda c: pytest.fail(f"{context}: {c} is not JSON"))
        check_against_spec(case.method, case.formatted_path, response.status_code, media, body)


def _restore_test_keys(h: ApiHarness) -> None:
    """DELETE /v1/keys/{id} may revoke the keys this test sends: revive them, so later roles still get in."""
    with h.store.session() as session:
        session.execute(update(ApiKey).where(ApiKey.name.like("test-%")).values(revoked_at=None))


def _negatable(operation: Any) -> bool:
    """Whether the operation takes input that can be made wrong (the key headers are replaced on every send)."""
    headers = [p for p in operation.headers if p.name not in AUTH_HEADERS]
    return bool(operation.path_parameters or operation.query or headers or operation.body)


PARAMS = [pytest.param(label, mode, id=f"{label}-{mode.value}")
          for label, operation in OPERATIONS.items() for mode in EXAMPLES
          if mode is GenerationMode.POSITIVE or _negatable(operation)]


@pytest.mark.parametrize(("label", "mode"), PARAMS)
def test_generated_requests_get_documented_answers(world, label, mode):
    operation = OPERATIONS[label]
    revokes = operation.method.upper() == "DELETE" and operation.path.startswith("/v1/keys/")

    @settings(max_examples=EXAMPLES[mode], derandomize=True, database=None, deadline=None, print_blob=True,
              suppress_health_check=list(HealthCheck))
    @given(case=_cases(operation, mode))
    def every_role(case: Any) -> None:
        for role in (None, *ROLES):
            _send(world, case, role)
            if revokes:
                _restore_test_keys(world)

    every_role()
