"""Liveness (the process answers) and readiness (the store is open and answers)."""

from flask import Blueprint, jsonify

from audiofp.services import ping

from ..errors import problem
from ..services import services

bp = Blueprint("health", __name__, url_prefix="/health")


@bp.get("/live")
def live():
    return jsonify(status="ok")


@bp.get("/ready")
def ready():
    try:
        ping(services().store)
    except Exception as exc:  # any failure to reach the store means "not ready"
        return problem(503, "not-ready", "Not ready", f"the store is not available: {type(exc).__name__}",
                       {"Retry-After": "5"})
    return jsonify(status="ready")
