"""WSGI entry point for gunicorn: ``gunicorn -w 4 api.wsgi:app``.

Configuration comes from the environment: ``AUDIOFP_DATABASE_URL`` and the
other ``AUDIOFP_*`` variables of the README's configuration table, or a file
named by ``AUDIOFP_CONFIG_FILE``. The store is opened now if the database is
up (else on first use); an index this code cannot serve raises here, so the
worker fails to boot rather than answering 503 for ever.
"""

from . import create_app

app = create_app()
app.extensions["audiofp"].warm_up()
