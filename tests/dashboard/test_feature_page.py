import datetime as dt
import math
from decimal import Decimal

import pytest

from costwatch.projects.models import AuditLog
from ingest.models import Feature, Price
from tests.dashboard.pagedata import RANGE, alpha_beta_rows, row, store

pytestmark = pytest.mark.django_db
LITE_OUT, PRO_OUT = Decimal("1.00"), Decimal("10.00")  # USD per 1M output tokens


@pytest.fixture
def data(project):
    for model, tier, out in (("m-lite", "lite", LITE_OUT), ("m-pro", "pro", PRO_OUT)):
        Price.objects.create(model=model, tier=tier, input_per_mtok=Decimal("0.1"), output_per_mtok=out,
                             effective_from=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    rows = alpha_beta_rows()
    store(project, rows)
    return [r for r in rows if r["feature"] == "alpha"]


def test_it_shows_the_features_numbers_and_charts(admin_client, project, data):
    response = admin_client.get(f"/p/{project.slug}/features/alpha/", RANGE)
    assert response.status_code == 200
    metrics = response.context["metrics"]
    assert metrics["cost_usd"] == sum(r["cost_usd"] for r in data)
    assert metrics["pro_share"] == 0.25
    html = response.content.decode()
    assert 'data-testid="kpi-pro-share">25.0%' in html
    cost_fig = response.context["figures"]["cost"]
    by_series = {trace["name"]: trace for trace in cost_fig["data"]}
    assert set(by_series) == {"lite · primary", "lite · triage", "pro · primary"}
    day = by_series["pro · primary"]["x"].index("2026-10-10")
    assert by_series["pro · primary"]["y"][day] == pytest.approx(0.02)
    assert by_series["lite · primary"]["y"][day] == pytest.approx(0.003)
    for name in ("fig-cost", "fig-pro-share", "fig-output", "fig-latency", "fig-rates"):
        assert f'id="{name}"' in html
    assert "vendor/plotly.min.js" in html


def test_pro_share_whatif_uses_tier_average_costs(admin_client, project, data):
    response = admin_client.get(f"/p/{project.slug}/features/alpha/", {**RANGE, "pro_share": "50"})
    routed = [r for r in data if r["role"] in ("primary", "escalation")]
    lite = [r["cost_usd"] for r in routed if r["tier"] == "lite"]
    pro = [r["cost_usd"] for r in routed if r["tier"] == "pro"]
    total = sum(r["cost_usd"] for r in data)
    avg_lite, avg_pro = sum(lite) / len(lite), sum(pro) / len(pro)
    want = total - sum(lite) - sum(pro) + len(routed) * (Decimal("0.5") * avg_pro + Decimal("0.5") * avg_lite)
    result = response.context["whatif_share"]
    assert result.current_usd == total
    assert result.whatif_usd == want  # 0.0231 - 0.023 + 4 * (0.01 + 0.0005) = 0.0421
    assert want == Decimal("0.0421")
    assert 'data-testid="whatif-share">$0.04' in response.content.decode()


def _bucket(value):
    return 0 if value < 1 else min(math.floor(math.log(value) / math.log(1.25)) + 1, 99)


def _midpoint(index):
    return 0.0 if index == 0 else 1.25 ** (index - 0.5)


def test_output_cap_whatif_uses_the_histogram_and_output_prices(admin_client, project, data):
    cap = 150
    response = admin_client.get(f"/p/{project.slug}/features/alpha/", {**RANGE, "cap": str(cap)})
    saved = Decimal(0)
    for tier, price in (("lite", LITE_OUT), ("pro", PRO_OUT)):
        outputs = [r["output_tokens"] for r in data if r["tier"] == tier]
        mids = [_midpoint(_bucket(v)) for v in outputs]
        fraction = 1 - (sum(min(m, cap) for m in mids) / len(mids)) / (sum(mids) / len(mids))
        saved += Decimal(sum(outputs)) * Decimal(str(fraction)) * price / 1_000_000
    result = response.context["whatif_capped"]
    total = sum(r["cost_usd"] for r in data)
    assert result.current_usd == total
    assert result.whatif_usd == pytest.approx(total - saved, abs=Decimal("1e-12"))
    assert saved > Decimal("0.02")  # the 3000-token Pro call dominates: capping it at 150 saves most of it


def test_recent_calls_are_the_newest_50_of_the_feature(admin_client, project):
    start = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
    store(project, [row(ts=start + dt.timedelta(minutes=i), event_id=f"recent-{i:03d}") for i in range(55)]
          + [row(feature="beta", ts=start + dt.timedelta(hours=5), event_id="other-feature")])
    calls = admin_client.get(f"/p/{project.slug}/features/alpha/", RANGE).context["recent_calls"]
    assert [c.event_id for c in calls] == [f"recent-{i:03d}" for i in range(54, 4, -1)]


def test_admin_saves_feature_settings_with_an_audit_entry(admin_client, project, data):
    response = admin_client.post(f"/p/{project.slug}/features/alpha/", {"expected_pro_share": "20", "muted": "on"})
    assert response.status_code == 302
    feature = Feature.objects.get(project=project, name="alpha")
    assert feature.expected_pro_share == pytest.approx(0.2) and feature.muted is True
    entry = AuditLog.objects.get(project=project, target_type="feature", target_id="alpha")
    assert entry.before == {"expected_pro_share": None, "muted": False}
    assert entry.after == {"expected_pro_share": 0.2, "muted": True}
    assert entry.actor_label == "alice"


def test_viewer_cannot_change_feature_settings(client, project, viewer, data):
    client.force_login(viewer)
    page = client.get(f"/p/{project.slug}/features/alpha/", RANGE)
    assert page.status_code == 200 and "Only project admins can change these." in page.content.decode()
    response = client.post(f"/p/{project.slug}/features/alpha/", {"expected_pro_share": "20", "muted": "on"})
    assert response.status_code == 404
    feature = Feature.objects.get(project=project, name="alpha")
    assert feature.expected_pro_share is None and feature.muted is False
    assert not AuditLog.objects.filter(target_type="feature").exists()


def test_unknown_feature_is_the_projects_own_404_page(admin_client, project, data, settings):
    settings.DEBUG = True  # as make run serves it: still not Django's debug page with the URL list
    response = admin_client.get(f"/p/{project.slug}/features/nope/")
    html = response.content.decode()
    assert response.status_code == 404
    assert 'data-testid="feature-missing"' in html and "<code>nope</code>" in html
    assert f'href="/p/{project.slug}/features/"' in html and "URLconf" not in html


def test_kpis_say_what_they_cover_and_first_call_is_the_first_events_day(admin_client, project, data):
    Feature.objects.filter(project=project, name="alpha").update(
        first_seen_at=dt.datetime(2026, 11, 30, tzinfo=dt.UTC))  # learned later, e.g. a backfill
    html = admin_client.get(f"/p/{project.slug}/features/alpha/", RANGE).content.decode()
    assert "Pro share in this range" in html and ": last 7 days vs the 28 before" in html
    assert "/ priced call" in html
    assert 'data-testid="first-call">First call on 2026-10-10.' in html


def test_pro_share_baseline_reaches_back_before_the_range(admin_client, project):
    before = dt.datetime(2026, 9, 20, 9, 0, tzinfo=dt.UTC)  # 11 days before the range starts
    store(project, [row(ts=before, tier="pro", model="m-pro"), row(ts=before), row(ts=before), row(ts=before),
                    row(ts=before, role="shadow", tier="pro", model="m-pro"),  # never in pro_share
                    row(ts=dt.datetime(2026, 10, 2, 9, 0, tzinfo=dt.UTC))])
    fig = admin_client.get(f"/p/{project.slug}/features/alpha/", RANGE).context["figures"]["pro_share"]
    daily, recent, baseline = (trace["y"] for trace in fig["data"][:3])
    assert baseline[0] == pytest.approx(1 / 4)  # Oct 1: the 28 days before Sep 24 hold Sep 20's 1 Pro of 4
    assert daily[1] == 0.0 and recent[1] == 0.0  # Oct 2: one Lite call
    assert baseline[30] == 0.0  # Oct 31: Sep 27 - Oct 24 holds only Oct 2's Lite call


def test_recent_calls_show_cap_state_errors_and_cost(admin_client, project):
    ts = dt.datetime(2026, 10, 5, 8, 30, tzinfo=dt.UTC)
    store(project, [
        row(ts=ts, event_id="capped", max_output_tokens=2048, cost_usd=Decimal("0.0012345")),
        row(ts=ts + dt.timedelta(seconds=1), event_id="uncapped", max_output_tokens=None),
        row(ts=ts + dt.timedelta(seconds=2), event_id="unknown-cap", max_output_tokens=None, cap_known=False),
        row(ts=ts + dt.timedelta(seconds=3), event_id="failed", status="error", finish_reason="", cost_usd=None),
    ])
    html = admin_client.get(f"/p/{project.slug}/features/alpha/", RANGE).content.decode()
    table = html.split('data-testid="recent-calls"')[1].split("</table>")[0]
    rows = {r.split('<code class="small">')[1].split("<")[0]: r for r in table.split("<tr>")[2:]}
    assert "10-05 08:30:00" in rows["capped"] and "2,048" in rows["capped"] and "$0.001235" in rows["capped"]
    assert '<span class="badge warn">none</span>' in rows["uncapped"]
    assert '<span class="muted">?</span>' in rows["unknown-cap"]
    assert '<span class="badge bad">error</span>' in rows["failed"] and "–" in rows["failed"]


def test_a_range_without_calls_renders_empty_charts_and_no_estimates(admin_client, project, data):
    response = admin_client.get(f"/p/{project.slug}/features/alpha/", {"start": "2026-06-01", "end": "2026-07-01"})
    assert response.status_code == 200
    assert response.context["figures"]["cost"]["data"] == []
    assert response.context["whatif_share"].whatif_usd is None
    assert "No priced calls in this range." in response.content.decode()
    for page in ("", "features/", "models/", "settings/"):
        empty = admin_client.get(f"/p/{project.slug}/{page}", {"start": "2026-06-01", "end": "2026-07-01",
                                                                "environment": "nowhere"})
        assert empty.status_code == 200, page


def test_cost_per_customer_of_the_feature(admin_client, project):
    project.dimensions = ["customer"]
    project.save()
    rows = [row(attributes={"customer": "acme"}, cost_usd=Decimal("0.30")),
            row(attributes={"customer": "acme"}, cost_usd=Decimal("0.10"), tier="pro", model="m-pro"),
            row(attributes={"customer": "globex"}, cost_usd=Decimal("0.05")),
            row(feature="beta", attributes={"customer": "globex"}, cost_usd=Decimal("9"))]
    store(project, rows)
    response = admin_client.get(f"/p/{project.slug}/features/alpha/", RANGE)
    (customer,) = response.context["breakdowns"]
    by_value = {r["value"]: r for r in customer["rows"]}
    assert by_value["acme"]["cost_usd"] == Decimal("0.40") and by_value["acme"]["pro_share"] == 0.5
    assert by_value["globex"]["cost_usd"] == Decimal("0.05")  # beta's $9 is another feature's
    html = response.content.decode()
    assert "Cost by customer" in html and "<td>acme</td><td class=\"num\">$0.40</td>" in html


def test_kpis_and_breakdowns_add_up_environments_and_dimensions(admin_client, project):
    """The page derives its KPI row from the FeatureDay frame it draws: same numbers as the features list
    (feature_metrics), across environments, and every declared dimension's breakdown."""
    from costwatch.metrics import selectors

    project.dimensions = ["customer", "plan"]
    project.save()
    day = dt.datetime(2026, 10, 10, 12, 0, tzinfo=dt.UTC)
    rows = [row(environment="production", attributes={"customer": "acme", "plan": "pro"}, latency_ms=400),
            row(environment="staging", attributes={"customer": "acme", "plan": "free"}, latency_ms=9000,
                cost_usd=Decimal("0.004")),
            row(environment="staging", tier="pro", model="m-pro", cost_usd=Decimal("0.02"), latency_ms=2000,
                attributes={"customer": "globex"}),
            row(environment="production", role="escalation", tier="pro", model="m-pro", cost_usd=Decimal("0.03")),
            row(environment="production", role="shadow", cost_usd=None, cost_source="", ts=day + dt.timedelta(days=1)),
            row(environment="staging", ts=day - dt.timedelta(days=20), tier="pro", model="m-pro")]  # baseline
    store(project, rows)
    for query, env_rows in (({}, rows[:5]), ({"environment": "staging"}, rows[1:3])):
        response = admin_client.get(f"/p/{project.slug}/features/alpha/", {**RANGE, "start": "2026-10-05", **query})
        metrics = response.context["metrics"]
        priced = [r["cost_usd"] for r in env_rows if r["cost_usd"] is not None]
        routed = [r for r in env_rows if r["role"] in ("primary", "escalation")]
        assert (metrics["calls"], metrics["cost_usd"]) == (len(env_rows), sum(priced))
        assert metrics["pro_share"] == pytest.approx(sum(r["tier"] == "pro" for r in routed) / len(routed))
        assert metrics["latency_p95_ms"] is not None
        assert [metrics] == selectors.feature_metrics(
            project=project, start=dt.datetime(2026, 10, 5, tzinfo=dt.UTC),
            end=dt.datetime(2026, 11, 1, tzinfo=dt.UTC), environment=query.get("environment"), feature="alpha")
        breakdowns = {b["dimension"]: {r["value"]: r for r in b["rows"]} for b in response.context["breakdowns"]}
        assert list(breakdowns) == ["customer", "plan"]
        for dimension, values in breakdowns.items():
            expected = {}
            for r in env_rows:
                if dimension in r["attributes"]:
                    expected.setdefault(r["attributes"][dimension], []).append(r)
            assert {v: (b["calls"], b["cost_usd"]) for v, b in values.items()} == {
                v: (len(rs), sum(r["cost_usd"] for r in rs)) for v, rs in expected.items()}
