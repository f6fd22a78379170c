"""The Alerts, Rules & budgets and Channels pages show bounded lists: the first rows and
"showing N of M", with every row in a streamed CSV (secrets and webhook paths never in it)."""

import csv
import datetime as dt
import io

import pytest

from budgets.models import Alert, Channel, Rule

from .helpers import NOW

pytestmark = pytest.mark.django_db


def streamed_csv(response) -> list[dict]:
    assert response.streaming and response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_the_rules_page_shows_200_rules_and_50_budgets_and_streams_all_of_each(client, user, project):
    Rule.objects.bulk_create([Rule(project=project, kind="spend_spike", params={"min_usd": n}) for n in range(150)])
    Rule.objects.bulk_create([Rule(project=project, kind="spend_budget", environment=None,
                                   params={"period": "month", "amount_usd": f"{n + 1}.00", "thresholds": [100],
                                           "basis": "actual"}) for n in range(60)])
    client.force_login(user)
    html = client.get(f"/p/{project.slug}/rules/").content.decode()
    rules_table = html.split('data-testid="rules"')[1].split("</table>")[0]
    budgets_table = html.split('data-testid="budgets"')[1].split("</table>")[0]
    assert rules_table.count("<tr>") == 1 + 200 and budgets_table.count("<tr>") == 1 + 50
    assert "Showing 200 of 210 rules; all 210 are in the CSV." in html
    assert "Showing 50 of 60 budgets; all 60 are in the CSV." in html

    rules = streamed_csv(client.get(f"/p/{project.slug}/rules/", {"format": "csv", "list": "rules"}))
    assert len(rules) == 210 and {r["kind"] for r in rules} == {"spend_spike", "spend_budget"}
    assert sorted(r["params"] for r in rules if r["kind"] == "spend_spike") == sorted(
        f'{{"min_usd": {n}}}' for n in range(150))
    budgets = streamed_csv(client.get(f"/p/{project.slug}/rules/", {"format": "csv", "list": "budgets"}))
    assert sorted(float(b["amount_usd"]) for b in budgets) == [n + 1.0 for n in range(60)]
    assert {b["spent_usd"] for b in budgets} == {"0.000000"} and {b["period"] for b in budgets} == {"month"}


def _alert(project, n, state):
    opened = NOW - dt.timedelta(minutes=n)
    return Alert(project=project, kind="spend_spike", key=f"k{n}", state=state, opened_at=opened,
                 last_fired_at=opened, last_notified_at=opened, message=f"alert number {n}",
                 resolved_at=opened if state == Alert.RESOLVED else None)


def test_the_alerts_page_shows_200_of_each_state_and_streams_every_alert(client, user, project):
    Alert.objects.bulk_create([_alert(project, n, Alert.OPEN) for n in range(203)]
                              + [_alert(project, 1000 + n, Alert.RESOLVED) for n in range(210)])
    client.force_login(user)
    html = client.get(f"/p/{project.slug}/alerts/").content.decode()
    assert "<h2>Open (203)</h2>" in html and "Showing 200 of 203 open alerts, the newest first" in html
    assert "Showing 200 of 210 resolved alerts, the newest first; all 210 are in the CSV." in html
    assert "alert number 0<" in html and "alert number 199<" in html and "alert number 200<" not in html
    alerts = streamed_csv(client.get(f"/p/{project.slug}/alerts/", {"format": "csv"}))
    assert len(alerts) == 413
    assert {a["message"] for a in alerts} == {f"alert number {n}" for n in [*range(203), *range(1000, 1210)]}


def test_the_channels_page_shows_50_channels_and_streams_all_without_secrets(client, user, project):
    Channel.objects.bulk_create([Channel(project=project, kind="webhook", name=f"hook-{n:02d}", secret="s3cret",
                                         target=f"https://hooks.example.com/XYZsecretpath/{n}") for n in range(55)])
    client.force_login(user)
    html = client.get(f"/p/{project.slug}/channels/").content.decode()
    assert html.count('<section class="card" data-testid="channel-') == 50
    assert "hook-49" in html and "hook-50" not in html
    assert "Showing 50 of 55 channels, by name; all 55 are in the CSV." in html
    response = client.get(f"/p/{project.slug}/channels/", {"format": "csv"})
    body = b"".join(response.streaming_content).decode()
    channels = list(csv.DictReader(io.StringIO(body)))
    assert [c["name"] for c in channels] == [f"hook-{n:02d}" for n in range(55)]
    assert {c["target_host"] for c in channels} == {"hooks.example.com"} and {c["has_secret"] for c in channels} == {
        "True"}
    assert "XYZsecretpath" not in body and "s3cret" not in body


def test_the_rule_forms_suggest_500_feature_names_and_take_any_other(client, user, project):
    from ingest.models import Feature

    Feature.objects.bulk_create([Feature(project=project, name=f"feature-{n:03d}") for n in range(520)])
    client.force_login(user)
    html = client.get(f"/p/{project.slug}/rules/").content.decode()
    suggestions = html.split('<datalist id="feature-names">')[1].split("</datalist>")[0]
    assert suggestions.count("<option") == 500 and 'value="feature-499"' in suggestions
    response = client.post(f"/p/{project.slug}/rules/", {"kind": "spend_spike", "feature": "feature-510",
                                                           "environment": "production", "cooldown_hours": "24",
                                                           "enabled": "on", "params": ""})
    assert response.status_code == 302
    assert Rule.objects.filter(project=project, kind="spend_spike", feature__name="feature-510").exists()
    rule = Rule.objects.get(project=project, kind="spend_spike", feature__name="feature-510")
    edit = client.get(f"/p/{project.slug}/rules/{rule.pk}/").content.decode()
    assert edit.split('<datalist id="feature-names">')[1].split("</datalist>")[0].count("<option") == 500
