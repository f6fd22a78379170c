"""Smoke of `manage.py soak` (the long run is `make soak`): real gunicorn, a real Celery worker with
beat, client processes; then its report is checked against the stored rows independently."""

import re
from collections import defaultdict
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from budgets.models import Alert
from costwatch.devtools import soak
from costwatch.metrics.models import HourlyRollup
from costwatch.projects.management.commands.soak import Command as SoakCommand
from costwatch.projects.models import Project
from ingest.models import DirtyHour, Event

CHECKS = ["requests answered", "stored == unique good sent == accepted", "duplicates == good events re-sent",
          "rejected == bad events sent", "no event stored twice", "rollups caught up",
          "HourlyRollup == raw aggregate", "FeatureHour == raw aggregate", "rule cycle ran", "worker log clean",
          f"RSS < {soak.RSS_LIMIT_MB} MB per process"]


def _number(pattern, text):
    return int(re.search(pattern, text).group(1))


def _sums_by_hour(rows):
    """(calls, input, output, cost, unpriced) per UTC hour, in Python."""
    sums = defaultdict(lambda: [0, 0, 0, Decimal(0), 0])
    for hour, calls, input_tokens, output_tokens, cost, unpriced in rows:
        entry = sums[hour]
        entry[0] += calls
        entry[1] += input_tokens
        entry[2] += output_tokens
        entry[3] += cost or Decimal(0)
        entry[4] += unpriced
    return dict(sums)


@pytest.mark.smoke
@pytest.mark.django_db(transaction=True)
def test_soak_run_reports_consistent_figures_and_passing_checks():
    out = StringIO()
    call_command("soak", "--seconds", "6", "--rate", "300", "--clients", "2", "--sample-seconds", "1",
                 "--probe-seconds", "1", "--catchup-seconds", "60", "--keep", stdout=out)
    text = out.getvalue()

    for name in CHECKS:
        assert f"PASS {name}:" in text, text
    assert "FAIL" not in text and "soak: all checks passed" in text
    run_id = re.search(r"soak (soak[0-9a-f]{8}): project soak,", text).group(1)

    # The API's answers add up: every event posted was accepted, a duplicate or rejected.
    sent = _number(r"sent: (\d+) events in", text)
    requests = _number(r"events in (\d+) requests of", text)
    batch = _number(r"requests of (\d+) ", text)
    accepted = _number(r"answers: accepted (\d+),", text)
    duplicates = _number(r"duplicates (\d+),", text)
    rejected = _number(r"rejected (\d+);", text)
    retried = _number(r"batches, (\d+) re-sent\)", text)
    assert sent == requests * batch and accepted + duplicates + rejected == sent
    assert accepted > 0 and rejected > 0  # bad events were mixed in and refused
    assert _number(r"429s: (\d+)", text) == 0
    assert re.search(r"batch POST latency p50 / p95 / max +\d+ / \d+ / \d+ ms", text)
    assert re.search(r"RSS largest gunicorn worker start / peak / end +\d+ / \d+ / \d+ MB", text)
    assert re.search(r"RSS celery worker \+ beat start / peak / end +\d+ / \d+ / \d+ MB", text)
    assert _number(r"worker refresh_project_rollups runs, all projects \(p50 / max\) +(\d+) \(", text) >= 1
    assert _number(r"worker evaluate_project runs, all projects \(p50 / max\) +(\d+) \(", text) >= 1

    # What it printed matches the database, counted here without the command's SQL.
    project = Project.objects.get(slug="soak")
    events = list(Event.objects.filter(project=project).values_list("event_id", "ts", "input_tokens",
                                                                     "output_tokens", "cost_usd", "model"))
    assert len(events) == len({e[0] for e in events})
    probes = [e for e in events if e[0].startswith(f"probe-{run_id}-")]
    load = [e for e in events if not e[0].startswith(f"probe-{run_id}-")]
    assert len(load) == accepted and all(e[0].startswith(f"{run_id}-") for e in load)

    # Freshness: each probe was acknowledged by the events API, then counted by the read API.
    seen, acknowledged = (int(n) for n in re.search(
        r"freshness lag p50 / p95 / max \(read API\) +[\d.]+ / [\d.]+ / [\d.]+ s over (\d+) of (\d+) probes",
        text).groups())
    assert seen == acknowledged == len(probes) >= 3
    assert re.search(r"read API caught up after the load stopped +[\d.]+ s", text), text
    # Refresh cost by minute: every stored event was added by a refresh exactly once, as a delta.
    table = re.findall(r"^ +(\d+) +(\d+) +([\d,]+) +([\d.]+) +([\d.]+|-)$", text, re.M)
    assert table, text
    assert sum(int(events_added.replace(",", "")) for _, _, events_added, _, _ in table) == len(events)
    for _minute, _runs, events_added, seconds, per_thousand in table:
        if per_thousand != "-":
            expected = float(seconds) * 1000 / int(events_added.replace(",", ""))
            assert abs(float(per_thousand) - expected) <= 0.002 + expected * 0.01
    if retried:
        assert duplicates > 0
    assert not DirtyHour.objects.filter(project=project).exists()

    hour = lambda ts: ts.replace(minute=0, second=0, microsecond=0)  # noqa: E731
    expected = _sums_by_hour((hour(ts), 1, i, o, cost, int(cost is None)) for _, ts, i, o, cost, _ in events)
    rolled = _sums_by_hour(HourlyRollup.objects.filter(project=project).values_list(
        "hour", "calls", "input_tokens", "output_tokens", "cost_usd", "unpriced_calls"))
    assert rolled == expected
    unpriced = sum(1 for e in events if e[5] == soak.UNPRICED_MODEL)
    assert unpriced > 0 and all(e[4] is None for e in events if e[5] == soak.UNPRICED_MODEL)
    alert = Alert.objects.get(project=project, kind="unpriced_traffic", state=Alert.OPEN)
    assert soak.UNPRICED_MODEL in alert.numbers["models"]

    # The checker itself notices a rollup that drifts from the raw events.
    row = HourlyRollup.objects.filter(project=project).first()
    HourlyRollup.objects.filter(pk=row.pk).update(calls=row.calls + 1)
    assert soak.rollup_comparison(project_id=project.pk)["mismatched_hours"] == [row.hour]

    # Without --keep the soak project's usage data and the project itself go away.
    SoakCommand()._cleanup(project, True, run_id, keep=False)
    assert not Project.objects.filter(slug="soak").exists()
    assert not Event.objects.filter(project_id=project.pk).exists()
    assert not HourlyRollup.objects.filter(project_id=project.pk).exists()


def test_soak_rejects_bad_options():
    with pytest.raises(CommandError, match="--rate must be > 0"):
        call_command("soak", "--rate", "0")
    with pytest.raises(CommandError, match="--batch must be between 1 and 1000"):
        call_command("soak", "--batch", "5000")
    with pytest.raises(CommandError, match="--clients must be > 0"):
        call_command("soak", "--clients", "0")
