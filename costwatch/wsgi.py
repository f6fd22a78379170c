import os
from importlib import import_module

from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "costwatch.settings")
application = get_wsgi_application()
# Import every view now, not on a worker's first request: that request would otherwise wait
# ~1-2 s for the dashboard's imports (pandas, plotly), and a client's batch with it.
import_module(settings.ROOT_URLCONF)
