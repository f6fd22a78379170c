"""unpriced_traffic, spend_spike and spend_budget as pure functions."""

from decimal import Decimal

from budgets.rules import Window, params_clean, spend_budget, spend_spike, unpriced_traffic


def test_one_unpriced_call_is_worth_an_alert_and_lists_the_models():
    verdict = unpriced_traffic(unpriced_calls_by_model={"mystery-model": 1, "priced": 0})
    assert verdict.fired
    assert verdict.numbers == {"unpriced_calls_24h": 1, "models": {"mystery-model": 1}}
    assert "mystery-model (1)" in verdict.message


def test_no_unpriced_calls_is_quiet():
    assert not unpriced_traffic(unpriced_calls_by_model={}).fired


def test_spend_spike_fires_at_twice_the_mean_and_5_dollars_above():
    baseline = Window(cost_usd=Decimal("140"), active_days=7)  # mean 5.00 a day
    verdict = spend_spike(last_24h=Window(cost_usd=Decimal("10.00")), baseline_28d=baseline, params={})
    assert verdict.fired
    assert verdict.numbers["mean_daily_cost_28d_usd"] == "5.000000"
    assert verdict.numbers["increase_usd"] == "5.000000"


def test_spend_spike_just_below_twice_is_quiet():
    baseline = Window(cost_usd=Decimal("140"), active_days=28)
    assert not spend_spike(last_24h=Window(cost_usd=Decimal("9.99")), baseline_28d=baseline, params={}).fired


def test_spend_spike_needs_5_dollars_of_increase():
    baseline = Window(cost_usd=Decimal("28"), active_days=28)  # mean 1.00: 5.99 is 5.99x but only +4.99
    assert not spend_spike(last_24h=Window(cost_usd=Decimal("5.99")), baseline_28d=baseline, params={}).fired
    assert spend_spike(last_24h=Window(cost_usd=Decimal("6.00")), baseline_28d=baseline, params={}).fired


def test_spend_spike_needs_calls_on_7_of_the_28_days():
    baseline = Window(cost_usd=Decimal("28"), active_days=6)
    verdict = spend_spike(last_24h=Window(cost_usd=Decimal("100")), baseline_28d=baseline, params={})
    assert not verdict.fired and "6 of the 28 days" in verdict.message


def test_budget_levels_on_actual_spend():
    params = params_clean("spend_budget", {"period": "day", "amount_usd": "50.00"})[0]
    assert spend_budget(spent_usd=Decimal("24.99"), elapsed_fraction=0.5, params=params).level is None
    assert spend_budget(spent_usd=Decimal("25"), elapsed_fraction=0.5, params=params).level == 50
    assert spend_budget(spent_usd=Decimal("40"), elapsed_fraction=0.5, params=params).level == 80
    top = spend_budget(spent_usd=Decimal("50"), elapsed_fraction=0.5, params=params)
    assert top.level == 100 and top.fired and top.numbers["spent_usd"] == "50.000000"


def test_forecast_basis_waits_for_20_percent_of_the_period():
    params = params_clean("spend_budget", {"period": "month", "amount_usd": "100", "basis": "forecast"})[0]
    early = spend_budget(spent_usd=Decimal("19"), elapsed_fraction=0.19, params=params)
    assert early.level is None and early.numbers["forecast_usd"] is None
    later = spend_budget(spent_usd=Decimal("20"), elapsed_fraction=0.2, params=params)
    assert later.numbers["forecast_usd"] == "100.000000"
    assert later.level == 100


def test_params_are_validated_per_kind_naming_the_field():
    _, errors = params_clean("spend_budget", {"period": "year", "thresholds": [50, "x"], "bogus": 1})
    fields = {f for f, _, _ in errors}
    assert fields == {"params.amount_usd", "params.period", "params.thresholds", "params.bogus"}
    _, errors = params_clean("unbounded_output", {"uncapped_share": 1.5})
    assert errors == [("params.uncapped_share", "invalid", "must be <= 1")]
    clean, errors = params_clean("pro_default", {"pro_share": 0.3})
    assert not errors and clean["pro_share"] == 0.3 and clean["min_calls"] == 100
