"""The ``audiofp`` command: a click group (``app``), one error -> exit-code table
(``errors``), and the modules that own the commands and register them on the group.

``catalogue`` (ingest, match, sounds), ``db`` (upgrade, current, stats),
``keys`` (create, list, revoke), ``seed`` (link, and ingest's seeding options),
``demo``. Other packages add commands through the ``audiofp.commands`` entry
points (the API's ``serve``). Every command calls only ``audiofp.services``.
"""

from . import catalogue, db, demo, keys, seed  # noqa: F401 - importing a module registers its commands
from .app import main

__all__ = ["main"]
