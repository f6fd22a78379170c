#!/usr/bin/env python
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "costwatch.settings")
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        _ = settings.INSTALLED_APPS  # load the settings now: a bad variable is one line, not a traceback
    except ImproperlyConfigured as exc:
        sys.exit(f"[costwatch] {exc}")
    execute_from_command_line(sys.argv)
