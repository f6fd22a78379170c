"""share_drift: a significant rise of the 7-day Pro share over the 28 days before."""

import math

import pytest

from budgets.rules import Window, one_sided_two_proportion_p, share_drift


def _p_by_hand(x1, n1, x2, n2):
    p1, p2, pooled = x1 / n1, x2 / n2, (x1 + x2) / (n1 + n2)
    z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return 0.5 * math.erfc(z / math.sqrt(2))


def test_the_z_test_matches_the_textbook_formula_and_known_values():
    assert one_sided_two_proportion_p(60, 200, 40, 200) == pytest.approx(_p_by_hand(60, 200, 40, 200))
    # z = 1.6449 gives the one-sided 5% point.
    assert 0.5 * math.erfc(1.6448536 / math.sqrt(2)) == pytest.approx(0.05, abs=1e-6)
    assert one_sided_two_proportion_p(40, 200, 60, 200) > 0.9  # a fall is not a rise


def test_it_fires_on_a_significant_rise_of_10_points():
    verdict = share_drift(last_7d=Window(routed_calls=400, routed_pro_calls=200),
                          baseline_28d=Window(routed_calls=1600, routed_pro_calls=640), params={})
    assert verdict.fired
    assert verdict.numbers["change_points"] == 0.1
    assert verdict.numbers["p_value"] < 0.01
    assert verdict.numbers["p_value"] == pytest.approx(_p_by_hand(200, 400, 640, 1600), rel=1e-2)


def test_a_rise_under_10_points_is_quiet_even_when_significant():
    verdict = share_drift(last_7d=Window(routed_calls=20000, routed_pro_calls=9900),
                          baseline_28d=Window(routed_calls=80000, routed_pro_calls=32000), params={})
    assert verdict.numbers["p_value"] < 0.01
    assert not verdict.fired


def test_a_10_point_rise_that_is_not_significant_is_quiet():
    verdict = share_drift(last_7d=Window(routed_calls=200, routed_pro_calls=60),
                          baseline_28d=Window(routed_calls=200, routed_pro_calls=40), params={})
    assert verdict.numbers["p_value"] == pytest.approx(_p_by_hand(60, 200, 40, 200), rel=1e-2)
    assert verdict.numbers["p_value"] > 0.01
    assert not verdict.fired


def test_each_window_needs_200_routed_calls():
    verdict = share_drift(last_7d=Window(routed_calls=199, routed_pro_calls=199),
                          baseline_28d=Window(routed_calls=5000, routed_pro_calls=0), params={})
    assert not verdict.fired
    assert not share_drift(last_7d=Window(routed_calls=5000, routed_pro_calls=5000),
                           baseline_28d=Window(routed_calls=199, routed_pro_calls=0), params={}).fired
