"""escalation_band: escalation rate outside 5-20% for routed features."""

from budgets.rules import Window, escalation_band


def test_it_fires_above_the_band():
    verdict = escalation_band(last_7d=Window(primary_calls=200, escalation_calls=42, triage_calls=200), params={})
    assert verdict.fired
    assert verdict.numbers["escalation_rate"] == 0.21
    assert "above" in verdict.message


def test_it_fires_below_the_band():
    verdict = escalation_band(last_7d=Window(primary_calls=1000, escalation_calls=49, triage_calls=1000), params={})
    assert verdict.fired and "below" in verdict.message


def test_the_band_edges_are_inside():
    assert not escalation_band(last_7d=Window(primary_calls=200, escalation_calls=40, triage_calls=1),
                               params={}).fired
    assert not escalation_band(last_7d=Window(primary_calls=200, escalation_calls=10, triage_calls=1),
                               params={}).fired


def test_it_needs_200_primary_calls():
    assert not escalation_band(last_7d=Window(primary_calls=199, escalation_calls=150, triage_calls=1),
                               params={}).fired


def test_features_without_triage_or_escalation_are_not_routed_and_skipped():
    verdict = escalation_band(last_7d=Window(primary_calls=5000), params={})
    assert not verdict.fired
    assert "not a routed feature" in verdict.message
