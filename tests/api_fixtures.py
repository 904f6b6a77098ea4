"""Fixtures and helpers of the API and moderation tests.

``SpecClient`` wraps Flask's test client and checks every response against
``api/openapi.yaml``: the status must be documented for the operation and the
body must validate against its schema, so the spec cannot drift from the code
without a test failing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import jsonschema
import pytest
import yaml
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from api import create_app
from api.resources.spec import SPEC_PATH
from audiofp.engine.types import Evidence
from audiofp.services import create_key
from audiofp import store as db
from audiofp.store import Store, UseKind

SPEC = yaml.safe_load(SPEC_PATH.read_text())
SPEC_URI = "urn:audiofp:openapi"
REGISTRY = Registry().with_resource(SPEC_URI, DRAFT202012.create_resource(SPEC))


def _template_regex(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$")


PATHS = [(tpl, _template_regex(tpl)) for tpl in SPEC["paths"]]


def _pointer(*parts: str) -> str:
    return "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def check_against_spec(method: str, path: str, status: int, content_type: str, body: Any) -> None:
    """Fail unless the response is documented in the spec and its body matches."""
    templates = [tpl for tpl, rx in PATHS if rx.match(path)]
    assert templates, f"{path} is not in the OpenAPI spec"
    tpl = templates[0]
    operation = SPEC["paths"][tpl].get(method.lower())
    assert operation is not None, f"{method} {tpl} is not in the OpenAPI spec"
    responses = operation["responses"]
    assert str(status) in responses, f"{method} {tpl} answered {status}, which the spec does not document"
    response = responses[str(status)]
    pointer_base = ("paths", tpl, method.lower(), "responses", str(status))
    if "$ref" in response:
        name = response["$ref"].rsplit("/", 1)[-1]
        response = SPEC["components"]["responses"][name]
        pointer_base = ("components", "responses", name)
    media = content_type.split(";")[0].strip()
    content = response.get("content", {})
    assert media in content, f"{method} {tpl} {status} answered {media}, the spec says {list(content)}"
    schema = {"$ref": f"{SPEC_URI}#/" + _pointer(*pointer_base, "content", media, "schema")}
    validator = jsonschema.Draft202012Validator(
        schema, registry=REGISTRY, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.path))
    assert not errors, f"{method} {path} {status}: " + "; ".join(
        f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors[:5]
    )


class SpecClient:
    """The Flask test client, checking every JSON answer against the spec."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.client = app.test_client()

    def open(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.client.open(path, method=method, **kwargs)
        media = response.mimetype
        if media in ("application/json", "application/problem+json"):
            check_against_spec(method, path.split("?")[0], response.status_code, media, response.get_json())
        return response

    def get(self, path: str, **kw: Any) -> Any:
        return self.open("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Any:
        return self.open("POST", path, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.open("DELETE", path, **kw)


@dataclass
class ApiHarness:
    app: Any
    client: SpecClient
    store: Store
    keys: dict[str, str]

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}


def make_harness(url: str, **config: Any) -> ApiHarness:
    app = create_app({"DATABASE_URL": url, "RATE_LIMIT_PER_MINUTE": 0, **config})
    store = app.extensions["audiofp"].store
    keys = {role: create_key(store, name=f"test-{role}", role=role).secret
            for role in ("pipeline", "investigator", "reviewer", "admin")}
    return ApiHarness(app, SpecClient(app), store, keys)


@pytest.fixture
def harness(store_url: str) -> Iterator[ApiHarness]:
    """An app on a fresh database (each backend) with one key per role."""
    h = make_harness(store_url)
    try:
        yield h
    finally:
        h.app.extensions["audiofp"].close()


# --- seeding without audio (for tests of removals, histories, auth) ----------

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def seed_sound(store: Store, name: str) -> int:
    """A sound row (no fingerprints): enough for the moderation tables."""
    with store.session() as session:
        digest = (name.encode().hex() + "0" * 64)[:64]
        return db.add_sound(session, content_digest=digest, duration_seconds=30.0, scheme=1,
                              fingerprint_count=0, source_name=name).id


def seed_upload(store: Store, content_id: str, account_id: str, uses: dict[int, str], *, minutes: int = 0,
                confidence: float = 0.9999) -> int:
    """An upload with uses of ``{sound_id: kind}``, as submit_upload would record them."""
    evidence = Evidence(query_start=0.0, query_end=10.0, sound_start=5.0, sound_end=17.5, speed=1.25,
                        pitch_semitones=3.86, anchors=120, score=12.0, confidence=confidence)
    with store.session() as session:
        upload_id = db.insert_upload(session, content_id=content_id, account_id=account_id,
                                       uploaded_at=T0 + timedelta(minutes=minutes), metadata=None,
                                       duration_seconds=10.0, idempotency_key=None)
        for sound_id, kind in uses.items():
            db.insert_use(session, upload_id=upload_id, sound_id=sound_id, kind=UseKind(kind), evidence=evidence)
        db.set_upload_verdict(session, upload_id, "{}", None)
    return upload_id
