"""Every model change has its migration: a field changed without one is a test failure, not a
surprise on the next deploy's `migrate`."""

from io import StringIO

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_the_models_need_no_migration_that_is_not_in_the_repository():
    out = StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=out)
    except SystemExit as exit_:  # makemigrations --check exits 1 when a migration is missing
        pytest.fail(f"a model changed without its migration (run manage.py makemigrations):\n{out.getvalue()}"
                    f"\nexit {exit_.code}")
