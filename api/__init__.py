"""The audiofp HTTP API: upload pipelines, investigators, reviewers and admins.

``create_app(config)`` builds the Flask app: configuration (defaults, file,
``AUDIOFP_*`` environment, then ``config``), problem+json errors, API-key
auth, one blueprint per resource, and request ids with an access log line
per request (``api.requestlog``). Views are thin: the domain is
``audiofp.services``.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from werkzeug.routing import IntegerConverter

from audiofp.config import Settings
from audiofp.services.cursors import MAX_ID

from . import auth, errors, requestlog, services
from .config import load_settings, split_config
from .parsing import reject_deep_json, reject_nul_characters
from .resources import register


class IdConverter(IntegerConverter):
    """A database id in a URL: a number past 64 bits is no id we issued (404), not a crash."""

    def __init__(self, url_map, *args, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(url_map, max=MAX_ID)


#: Room for the multipart envelope (boundaries, form fields) around an upload of the largest size.
MULTIPART_ALLOWANCE_BYTES = 64 * 1024


def max_request_body(settings: Settings) -> int:
    """Largest request body accepted: the upload limit plus its multipart envelope (the proxy in deploy/ agrees)."""
    return settings.limits.max_upload_bytes + MULTIPART_ALLOWANCE_BYTES


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app; the store is opened lazily on first use (see ``api.services``)."""
    app = Flask(__name__, static_folder=None)
    settings = load_settings(config)
    app.config.update(split_config(config)[1])
    app.config["AUDIOFP_SETTINGS"] = settings
    # Werkzeug refuses a body past this before reading it (413), so a huge
    # upload never reaches the decoder.
    app.config["MAX_CONTENT_LENGTH"] = max_request_body(settings)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.url_map.converters["id"] = IdConverter
    errors.init_app(app)
    services.init_app(app)
    auth.init_app(app)
    app.before_request(reject_deep_json)
    app.before_request(reject_nul_characters)
    register(app)
    requestlog.init_app(app)  # last: the outermost WSGI layer sees every request and response
    return app
