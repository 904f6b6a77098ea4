"""The audiofp HTTP API: upload pipelines, investigators, reviewers and admins.

``create_app(config)`` builds the Flask app: configuration (defaults, file,
``AUDIOFP_*`` environment, then ``config``), problem+json errors, API-key
auth, and one blueprint per resource. Views are thin: the domain is
``audiofp.moderation``.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from . import auth, errors, services
from .config import load_config
from .resources import register


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app; the store is opened lazily on first use (see ``api.services``)."""
    app = Flask(__name__, static_folder=None)
    app.config.update(load_config(config))
    # Werkzeug refuses a body past this before reading it (413), so a huge
    # upload never reaches the decoder.
    app.config["MAX_CONTENT_LENGTH"] = int(app.config["MAX_UPLOAD_BYTES"]) + 64 * 1024
    app.json.sort_keys = False  # type: ignore[attr-defined]
    errors.init_app(app)
    services.init_app(app)
    auth.init_app(app)
    register(app)
    return app
