"""Old import path, kept until tests/test_moderation.py imports from the new modules.

``apply_seed`` is now :func:`audiofp.services.operations.seed_sounds`; the
``keys`` and ``link`` commands register themselves on the ``audiofp`` group
(``audiofp.cli.keys``, ``audiofp.cli.seed``) and ``serve`` comes from the API
package's entry point, so :func:`register` has nothing left to do for that group.
"""

from __future__ import annotations

import click

from ..services.operations import seed_sounds as apply_seed
from .keys import keys
from .seed import link


def register(group: click.Group) -> None:
    """Add ``keys`` and ``link`` to ``group`` (idempotent; the ``audiofp`` group has them already)."""
    group.add_command(keys)
    group.add_command(link)


__all__ = ["apply_seed", "register"]
