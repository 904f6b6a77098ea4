"""One blueprint per resource; each view parses, authorises, calls the domain, renders."""

from flask import Flask

from . import accounts, admin, events, health, keys, removals, search, sounds, spec, uploads, uses

BLUEPRINTS = (
    health.bp, spec.bp, uploads.bp, removals.bp, events.bp, sounds.bp, uses.bp,
    accounts.bp, search.bp, keys.bp, admin.bp,
)


def register(app: Flask) -> None:
    for bp in BLUEPRINTS:
        app.register_blueprint(bp)
