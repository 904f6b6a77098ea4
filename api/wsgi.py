"""WSGI entry point for gunicorn: ``gunicorn -w 4 api.wsgi:app``.

Configuration comes from the environment (``AUDIOFP_DATABASE_URL`` and the
other ``AUDIOFP_*`` keys of ``api.config``) or ``AUDIOFP_API_CONFIG``.
"""

from . import create_app

app = create_app()
app.extensions["audiofp"].warm_up()
