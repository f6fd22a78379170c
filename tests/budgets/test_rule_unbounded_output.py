"""unbounded_output: calls without a real cap, or output per call far above its baseline."""

from budgets.rules import Window, unbounded_output

P = {}


def test_it_fires_when_five_percent_of_capped_calls_have_no_cap():
    last = Window(calls=200, cap_known_calls=200, uncapped_calls=10, output_tokens=200 * 300)
    verdict = unbounded_output(last_24h=last, baseline=Window(), params=P)
    assert verdict.fired
    assert verdict.numbers["uncapped_share"] == 0.05
    assert verdict.numbers["uncapped_calls_24h"] == 10
    assert "5.0% of calls set no output cap" in verdict.message


def test_it_stays_quiet_just_below_five_percent():
    last = Window(calls=1000, cap_known_calls=1000, uncapped_calls=49, output_tokens=1000 * 300)
    verdict = unbounded_output(last_24h=last, baseline=Window(), params=P)
    assert not verdict.fired
    assert verdict.numbers["uncapped_share"] == 0.049


def test_the_volume_guard_needs_100_calls():
    last = Window(calls=99, cap_known_calls=99, uncapped_calls=99, output_tokens=99 * 300)
    verdict = unbounded_output(last_24h=last, baseline=Window(), params=P)
    assert not verdict.fired
    assert "below the 100-call guard" in verdict.message


def test_it_fires_when_output_per_call_is_1_5x_the_baseline_with_500_baseline_calls():
    last = Window(calls=100, cap_known_calls=100, output_tokens=100 * 450)
    baseline = Window(calls=500, output_tokens=500 * 300)
    verdict = unbounded_output(last_24h=last, baseline=baseline, params=P)
    assert verdict.fired
    assert verdict.numbers["output_ratio"] == 1.5
    assert verdict.numbers["baseline_output_tokens_per_call"] == 300.0


def test_output_growth_needs_500_baseline_calls():
    last = Window(calls=100, cap_known_calls=100, output_tokens=100 * 900)
    baseline = Window(calls=499, output_tokens=499 * 300)
    assert not unbounded_output(last_24h=last, baseline=baseline, params=P).fired


def test_output_just_below_1_5x_does_not_fire():
    last = Window(calls=100, cap_known_calls=100, output_tokens=100 * 449)
    baseline = Window(calls=1000, output_tokens=1000 * 300)
    assert not unbounded_output(last_24h=last, baseline=baseline, params=P).fired


def test_calls_with_unknown_cap_are_left_out_of_the_share():
    # 150 OTLP calls with cap unknown, 100 known of which 4 uncapped: 4%, not 4/250.
    last = Window(calls=250, cap_known_calls=100, uncapped_calls=4, output_tokens=250 * 10)
    verdict = unbounded_output(last_24h=last, baseline=Window(), params=P)
    assert verdict.numbers["uncapped_share"] == 0.04
    assert not verdict.fired


def test_params_change_the_thresholds():
    last = Window(calls=20, cap_known_calls=20, uncapped_calls=1, output_tokens=20)
    assert unbounded_output(last_24h=last, baseline=Window(), params={"min_calls": 10}).fired
    assert not unbounded_output(last_24h=last, baseline=Window(), params={"min_calls": 10,
                                                                          "uncapped_share": 0.1}).fired
