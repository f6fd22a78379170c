"""`manage.py bench_savings` runs end to end on a small size and prints its figures (no timing asserted)."""

from io import StringIO

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_bench_savings_prints_its_figures():
    out = StringIO()
    call_command("bench_savings", "--features", "20", "--days", "3", "--runs", "1", stdout=out)
    text = out.getvalue()
    assert "seeded 20 features x 3 days" in text
    assert "recommendations: worst" in text and "(target < 2 s)" in text
    assert "'recommended'" in text and "'thin_evidence'" in text and "'stale'" in text
