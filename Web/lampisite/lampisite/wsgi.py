"""WSGI entry point, loaded by uWSGI as `lampisite.wsgi:application`."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lampisite.settings")

application = get_wsgi_application()
