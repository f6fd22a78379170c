import re

import pytest
from django.core.management import CommandError, call_command

from costwatch.metrics.models import FeatureDay
from ingest.models import Event, Feature


@pytest.mark.smoke
@pytest.mark.django_db(transaction=True)  # the pages are timed through gunicorn, another process
def test_bench_dashboard_smoke_prints_p95_for_every_page_and_api_call(capsys):
    call_command("bench_dashboard", "--events", "2000", "--days", "10", "--iterations", "3", "--features", "10")
    out = capsys.readouterr().out
    assert "10 features; timing from an HTTP client against gunicorn (2 workers), full response" in out
    assert Feature.objects.filter(project__slug="bench-dashboard").count() == 10
    seeded = int(re.search(r"seeded (\d+) events over 10 days", out).group(1))
    assert seeded == Event.objects.filter(project__slug="bench-dashboard").count() > 1500
    assert FeatureDay.objects.filter(project__slug="bench-dashboard").exists()
    lines = [line for line in out.splitlines() if line.startswith(("/p/", "/api/"))]
    urls = [line.split()[0] for line in lines]
    assert "/p/bench-dashboard/" in urls
    assert any(url.startswith("/api/v1/features?") for url in urls)
    assert any(url.startswith("/api/v1/breakdown?") for url in urls)
    pages = {url.split("/")[3] for url in urls if url.startswith("/p/")}  # /p/<slug>/<page>/
    assert pages == {"", "features", "models", "customers", "savings", "settings", "alerts", "rules", "channels",
                     "prices", "keys"}
    api = {url.split("?")[0].removeprefix("/api/v1/").split("/")[0] for url in urls if url.startswith("/api/")}
    assert api == {"features", "timeseries", "models", "breakdown", "recommendations", "budget-status", "alerts",
                   "rules", "channels"}
    assert sum(url.startswith("/api/v1/recommendations?") for url in urls) == 2
    assert re.search(r"recommendations computed afresh \(a cache miss, in process\): p50 \d+\.\d ms, max "
                     r"\d+\.\d ms over 5 runs, [1-9]\d* moves", out)
    verdicts = []
    for line in lines:  # the label must follow from the printed p95, whichever way this machine went
        match = re.search(r"\s(\d+\.\d)\s+(\d+\.\d)\s+(\d+\.\d)\s+(met|MISSED)$", line)
        assert match, line
        p50, p95, slowest = (float(match.group(i)) for i in (1, 2, 3))
        assert p50 <= slowest and p95 <= slowest, line
        if abs(p95 - 150) > 0.05:  # a figure that rounds to the target may go either way
            assert match.group(4) == ("met" if p95 < 150 else "MISSED"), line
        verdicts.append(match.group(4))
    overall = "MET" if all(v == "met" for v in verdicts) else "NOT MET"
    assert f"p95 < 150 ms on every URL (3 requests each): {overall}" in out

    call_command("bench_dashboard", "--reuse", "--iterations", "1", "--in-process")
    out = capsys.readouterr().out
    assert "reusing the events and rollups of bench-dashboard" in out
    assert "timing in process (Django test Client, server time)" in out
    assert Event.objects.filter(project__slug="bench-dashboard").count() == seeded


def test_bench_dashboard_rejects_bad_input():
    with pytest.raises(CommandError, match="--days"):
        call_command("bench_dashboard", "--days", "400")


@pytest.mark.django_db
def test_the_bench_project_is_found_by_slug_only_so_a_real_project_s_name_never_picks_it():
    from costwatch.devtools.bench import bench_project_ensure
    from tests.factories import make_project

    real = make_project("bench-dashboard", slug="acme")  # a real project that happens to bear the name
    bench, created = bench_project_ensure("bench-dashboard", name="Bench bench-dashboard", by_name=False)
    assert created and bench.pk != real.pk and bench.slug == "bench-dashboard"
    assert bench_project_ensure("bench-dashboard", by_name=False) == (bench, False)
    # The load runs (soak, bench_ingest) accept a slug or a name and delete only their own events.
    assert bench_project_ensure("Bench bench-dashboard") == (bench, False)
