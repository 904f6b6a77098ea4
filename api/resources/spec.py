"""The OpenAPI document, as YAML (the source) and JSON."""

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from flask import Blueprint, Response, jsonify

bp = Blueprint("spec", __name__)

SPEC_PATH = Path(__file__).resolve().parent.parent / "openapi.yaml"


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    return yaml.safe_load(SPEC_PATH.read_text())


@bp.get("/openapi.json")
def openapi_json():
    return jsonify(openapi_document())


@bp.get("/openapi.yaml")
def openapi_yaml():
    return Response(SPEC_PATH.read_text(), mimetype="application/yaml")
