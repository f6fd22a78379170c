import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from costwatch.metrics.models import RollupState
from tests.dashboard.pagedata import RANGE, alpha_beta_rows, row, store

pytestmark = pytest.mark.django_db


def this_month_ts():
    """A moment in the current UTC month that is already past."""
    now = timezone.now()
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return month_start + (now - month_start) / 2


def test_it_shows_month_to_date_spend_share_and_unpriced_calls(admin_client, project):
    ts = this_month_ts()
    rows = [row(ts=ts, cost_usd=Decimal("1.25")), row(ts=ts, cost_usd=Decimal("2.50")),
            row(ts=ts, tier="pro", model="m-pro", cost_usd=Decimal("4.00")),
            row(ts=ts, feature="beta", tier="unknown", model="m-free", cost_usd=None, cost_source="")]
    store(project, rows)
    response = admin_client.get(f"/p/{project.slug}/")
    ov = response.context["ov"]
    assert ov["spent_usd"] == Decimal("7.75")
    assert ov["pro_share"] == pytest.approx(1 / 4) and ov["lite_share"] == pytest.approx(2 / 4)
    assert ov["unpriced_calls"] == 1
    html = response.content.decode()
    assert '<div class="value">$7.75</div>' in html
    assert "50%</span> / <span class=\"pro-text\">25%" in html
    assert "<code>m-free</code>" in html
    assert [f["feature"] for f in ov["top_by_cost"]] == ["alpha"]
    assert "25% unknown tier" in html  # beta's unpriced call has no tier
    assert 'data-figure="cost-figure"' in html and 'id="cost-figure"' in html
    names = [trace["name"] for trace in response.context["cost_figure"]["data"]]
    assert names == ["lite", "pro"]  # unknown tier costs nothing (unpriced): no empty series


def test_it_warns_when_the_rollups_are_behind(admin_client, project):
    store(project, [row(ts=this_month_ts())])
    RollupState.objects.filter(project=project).update(refreshed_at=timezone.now() - dt.timedelta(minutes=12))
    html = admin_client.get(f"/p/{project.slug}/").content.decode()
    assert "Data as of" in html and "more than 5 minutes behind" in html
    RollupState.objects.filter(project=project).update(refreshed_at=timezone.now())
    html = admin_client.get(f"/p/{project.slug}/").content.decode()
    assert "Data as of" in html and "more than 5 minutes behind" not in html


def test_open_alerts_are_listed(admin_client, project):
    budgets = pytest.importorskip("budgets.models")
    store(project, [row(ts=this_month_ts())])
    rule = budgets.Rule.objects.create(project=project, kind="spend_budget",
                                       params={"budget_usd": "1", "period": "month"})
    now = timezone.now()
    budgets.Alert.objects.create(project=project, rule=rule, kind="spend_budget", key="project", scope={},
                                 level=100, state="open", opened_at=now, last_fired_at=now,
                                 last_notified_at=now, message="Spend is at 120% of the monthly budget")
    html = admin_client.get(f"/p/{project.slug}/").content.decode()
    assert "Spend is at 120% of the monthly budget" in html


def test_empty_project_shows_the_first_event_example(admin_client, project):
    html = admin_client.get(f"/p/{project.slug}/").content.decode()
    assert "send your first one" in html and "/api/v1/events" in html


def test_anonymous_is_sent_to_login_and_outsiders_get_404(client, project, outsider):
    pages = ["", "features/", "features/alpha/", "models/", "settings/"]
    store(project, [row(ts=this_month_ts())])
    for page in pages:
        response = client.get(f"/p/{project.slug}/{page}")
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    client.force_login(outsider)
    for page in pages:
        assert client.get(f"/p/{project.slug}/{page}").status_code == 404


@pytest.mark.parametrize("path, title", [("", "Overview"), ("features/", "Features"), ("models/", "Models")])
def test_a_ranged_page_before_the_first_event_shows_its_title_toolbar_and_the_first_event_help(
        admin_client, project, path, title):
    html = admin_client.get(f"/p/{project.slug}/{path}").content.decode()
    assert f"<title>{title} · {project.name}</title>" in html
    assert f"<h1>{title}</h1>" in html and 'class="range-picker"' in html
    assert 'data-testid="empty-state"' in html


@pytest.mark.parametrize("path, title, marker", [("", "Overview", 'data-testid="kpi-mtd"'),
                                                 ("features/", "Features", 'data-testid="features-table"'),
                                                 ("models/", "Models", 'data-testid="models-csv"')])
def test_a_ranged_page_with_data_shows_its_title_and_its_own_body(admin_client, project, path, title, marker):
    store(project, alpha_beta_rows())
    html = admin_client.get(f"/p/{project.slug}/{path}", RANGE).content.decode()
    assert f"<title>{title} · {project.name}</title>" in html and f"<h1>{title}</h1>" in html
    assert marker in html and 'data-testid="empty-state"' not in html


def test_customers_and_savings_show_their_title_freshness_and_own_head(admin_client, project):
    savings = admin_client.get(f"/p/{project.slug}/savings/").content.decode()
    assert f"<title>Savings · {project.name}</title>" in savings and "<h1>Savings</h1>" in savings
    assert 'data-testid="data-as-of"' in savings and 'data-testid="empty-state"' in savings
    plain = admin_client.get(f"/p/{project.slug}/customers/").content.decode()
    assert "<h1>Customers</h1>" in plain and 'data-testid="customer-search"' not in plain
    project.dimensions = ["customer"]
    project.save()
    html = admin_client.get(f"/p/{project.slug}/customers/").content.decode()
    assert f"<title>Customers · {project.name}</title>" in html
    assert '<h1>Customers <span class="muted">by customer</span></h1>' in html
    head = html.split('class="page-head"')[1].split('data-testid="customers-table"')[0]
    assert 'data-testid="data-as-of"' in head and 'data-testid="customer-search"' in head
