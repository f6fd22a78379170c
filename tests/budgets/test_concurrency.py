"""Two rule cycles at once open one alert and send one notice (the partial unique index)."""

import threading

import pytest
from django.db import connection

from budgets import services
from budgets.models import Alert, Channel, Delivery, Notice
from budgets.services import cycle as rule_cycle

from .helpers import NOW, uncapped_feature

pytestmark = pytest.mark.django_db(transaction=True)
ROUNDS = 5


def _race(project, now, monkeypatch):
    """Both threads compute their verdicts, meet at a barrier, then apply them at the same moment."""
    barrier = threading.Barrier(2, timeout=30)
    original = rule_cycle.alerts_apply

    def apply_after_barrier(**kwargs):
        barrier.wait()
        return original(**kwargs)

    monkeypatch.setattr(rule_cycle, "alerts_apply", apply_after_barrier)
    errors = []

    def cycle():
        try:
            services.rules_evaluate(project=project, now=now)
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()  # each thread had its own connection

    threads = [threading.Thread(target=cycle) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors


def test_two_concurrent_cycles_open_one_alert_and_notify_once(project, monkeypatch):
    uncapped_feature(project)
    Channel.objects.create(project=project, kind="email", name="ops", target="ops@example.com")
    for round_number in range(ROUNDS):
        _race(project, NOW, monkeypatch)
        assert Alert.objects.exclude(state="resolved").count() == 1, f"round {round_number}"
        assert Notice.objects.filter(type="opened").count() == 1
        assert Delivery.objects.count() == 1
        Alert.objects.all().delete()  # next round races for a fresh key
