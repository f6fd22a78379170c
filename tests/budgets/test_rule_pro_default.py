"""pro_default: too much Pro, or Pro picked by a default/fallback route."""

from budgets.rules import Window, pro_default


def test_it_fires_at_40_percent_pro_over_100_routed_calls():
    verdict = pro_default(last_24h=Window(routed_calls=100, routed_pro_calls=40), params={})
    assert verdict.fired
    assert verdict.numbers["pro_share"] == 0.4
    assert verdict.numbers["pro_share_threshold"] == 0.4


def test_just_below_40_percent_is_quiet():
    verdict = pro_default(last_24h=Window(routed_calls=1000, routed_pro_calls=399), params={})
    assert not verdict.fired
    assert verdict.numbers["pro_share"] == 0.399


def test_the_volume_guard_needs_100_routed_calls():
    assert not pro_default(last_24h=Window(routed_calls=99, routed_pro_calls=99), params={}).fired


def test_expected_pro_share_plus_10_points_replaces_the_threshold():
    window = Window(routed_calls=100, routed_pro_calls=55)
    quiet = pro_default(last_24h=window, params={}, expected_pro_share=0.5)
    assert not quiet.fired and quiet.numbers["pro_share_threshold"] == 0.6
    loud = pro_default(last_24h=Window(routed_calls=100, routed_pro_calls=60), params={}, expected_pro_share=0.5)
    assert loud.fired


def test_it_fires_when_half_of_50_pro_calls_were_routed_by_default():
    # Pro share 25% is under 40%, but 25 of 50 Pro calls were 'default'/'fallback'.
    window = Window(routed_calls=200, routed_pro_calls=50, routed_pro_default_calls=25)
    verdict = pro_default(last_24h=window, params={})
    assert verdict.fired
    assert verdict.numbers["pro_default_route_share"] == 0.5
    assert "'default' or 'fallback'" in verdict.message


def test_default_routes_need_50_pro_calls_and_half_of_them():
    assert not pro_default(last_24h=Window(routed_calls=200, routed_pro_calls=49, routed_pro_default_calls=49),
                           params={}).fired
    assert not pro_default(last_24h=Window(routed_calls=200, routed_pro_calls=60, routed_pro_default_calls=29),
                           params={}).fired
