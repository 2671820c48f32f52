import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crossfeed.settings")
application = get_wsgi_application()

# Import every URLconf (and so every view, form and admin module) now rather than on the first request: with
# gunicorn --preload this happens once in the master, before the workers fork, instead of costing the first
# request of each worker most of a second.
from django.urls import get_resolver  # noqa: E402

get_resolver().url_patterns  # noqa: B018
