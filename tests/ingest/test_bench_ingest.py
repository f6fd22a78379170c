"""Smoke of `manage.py bench_ingest` (the long run is `make bench`): real gunicorn, real COPY."""

import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from costwatch.projects.models import Project
from ingest.models import Event


@pytest.mark.smoke
@pytest.mark.django_db(transaction=True)
def test_bench_ingest_sends_through_gunicorn_and_compares_with_copy():
    out = StringIO()
    call_command("bench_ingest", "--events", "1500", "--batch", "500", "--clients", "2", "--workers", "1",
                 "--profile-batches", "1", "--rounds", "2", "--keep", stdout=out)
    text = out.getvalue()
    assert re.search(r"round 1: API [\d,]+ events/s, raw COPY [\d,]+ events/s, ratio [\d.]+\n"
                     r"round 2: API [\d,]+ events/s, raw COPY [\d,]+ events/s, ratio [\d.]+\n"
                     r"median round \([12] of 2\):\n", text), text
    assert "events sent: 1500 in 3 requests of 500 from 2 client processes" in text
    assert "stored: 1500 (accepted 1500, duplicates 0, failed requests 0)" in text
    api_rate = float(re.search(r"API ingest: ([\d,]+) events/s", text).group(1).replace(",", ""))
    copy_rows = int(re.search(r"raw COPY: +[\d,]+ events/s \((\d+) rows", text).group(1))
    ratio_line = re.search(r"ratio API/COPY: ([\d.]+) \(target >= 0.5: (met|NOT met)\)", text)
    ratio = float(ratio_line.group(1))
    if abs(ratio - 0.5) > 0.0005:  # the verdict follows the figure (one that rounds to 0.500 may go either way)
        assert ratio_line.group(2) == ("met" if ratio >= 0.5 else "NOT met")
    assert api_rate > 0 and copy_rows == 1500 and ratio > 0
    assert re.search(r"profile per batch of 500 \(in-process, ms\): parse [\d.]+, validate [\d.]+, price [\d.]+, "
                     r"write [\d.]+", text)
    assert re.search(r"CPU per batch of 500 \(ms\), API: web workers [\d.]+, PostgreSQL [\d.]+, clients [\d.]+; "
                     r"raw COPY: PostgreSQL [\d.]+, clients [\d.]+", text)
    project = Project.objects.get(slug="bench-ingest")
    # Per round (kept with --keep): 1500 sent through the API and 1 warm-up event per client;
    # then 500 + 500 from the in-process profile (a warm-up batch and the profiled one).
    assert Event.objects.filter(project=project).count() == 2 * (1500 + 2) + 500 + 500
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('bench_ingest_copy')")
        assert cursor.fetchone()[0] is None  # the scratch table is dropped


def test_bench_ingest_rejects_bad_options():
    with pytest.raises(CommandError, match="--batch must be <= 1000"):
        call_command("bench_ingest", "--batch", "5000")
    with pytest.raises(CommandError, match="--url needs --key"):
        call_command("bench_ingest", "--url", "http://127.0.0.1:9")
