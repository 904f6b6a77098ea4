"""Alembic migrations of the audiofp schema: the only way the schema is created or changed.

Run them with ``audiofp db upgrade`` or ``audiofp.store.upgrade(url)``; the
configuration is built in code (``audiofp.store.database.alembic_config``), so
no working directory or ini file is needed. ``alembic.ini`` here serves the
``alembic`` command line (``alembic -c migrations/alembic.ini ...``).
"""
