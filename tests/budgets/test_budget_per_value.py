"""A budget on every value of a dimension ({"customer": "*"}): one alert per customer over it.

Events go in through the API with a `customer` attribute and a client cost on a model no
catalogue prices, so each customer's spend is exactly the sum the test writes down.
"""

import itertools
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from budgets.models import Alert, Channel, Rule
from budgets.services import deliveries_send_due, rules_evaluate
from costwatch.metrics.services import rollups_refresh_dirty

pytestmark = pytest.mark.django_db
_ids = itertools.count()

SPEND = {  # customer -> the costs of its calls this month
    "acme": ["0.40", "0.25"],  # 0.65 of a 0.50 budget: 130%
    "globex": ["0.10", "0.05"],  # 0.15: 30%, under every threshold
    "initech": ["0.20"],  # 0.20: 40%
}


def _events(now):
    return [{"event_id": f"pv-{next(_ids)}", "timestamp": now.isoformat(), "feature": "support-chat",
             "model": "acme-unpriced-test", "input_tokens": 100, "output_tokens": 20, "cost_usd": cost,
             "attributes": {"customer": customer}}
            for customer, costs in SPEND.items() for cost in costs]


@pytest.fixture
def customers_project(project, key_client):
    project.dimensions = ["customer"]
    project.save()
    now = timezone.now()
    sent = key_client(project, "ingest").post("/api/v1/events", {"events": _events(now)}, format="json")
    assert sent.status_code == 200 and sent.json()["accepted"] == 5
    rollups_refresh_dirty(project=project)
    return project, now


def _per_value_budget(manage_client, amount="0.50"):
    response = manage_client.post("/api/v1/rules", {
        "kind": "spend_budget", "dimension": {"customer": "*"},
        "params": {"period": "month", "amount_usd": amount, "thresholds": [50, 80, 100]}}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["dimension"] == {"customer": "*"}
    return Rule.objects.get(pk=response.json()["id"])


def test_only_the_customer_over_its_monthly_budget_alerts(customers_project, manage_client, settings):
    project, now = customers_project
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    Channel.objects.create(project=project, kind=Channel.EMAIL, name="ops", target="ops@example.com")
    rule = _per_value_budget(manage_client)
    rules_evaluate(project=project, now=now)

    amount = Decimal("0.50")
    spent = {customer: sum(Decimal(c) for c in costs) for customer, costs in SPEND.items()}
    over = sorted(c for c, total in spent.items() if total >= amount)
    assert over == ["acme"]  # the fixture's point: one customer over, the others at 30% and 40%
    alerts = list(Alert.objects.filter(rule=rule))
    assert [a.scope["dimension"] for a in alerts] == [{"customer": "acme"}]
    [alert] = alerts
    assert alert.level == 100 and Decimal(alert.numbers["spent_usd"]) == spent["acme"]
    assert alert.numbers["value"] == "acme" and "customer acme" in alert.message
    assert alert.key.startswith("dimension={'customer': 'acme'}|")

    assert deliveries_send_due(now=now) == 1
    [email] = mail.outbox
    assert "for customer acme" in email.subject and "customer acme" in email.body


def test_each_value_gets_its_own_alert_and_a_second_cycle_opens_none(customers_project, manage_client):
    project, now = customers_project
    rule = _per_value_budget(manage_client, amount="0.18")  # acme 361%, globex 83%, initech 111%
    rules_evaluate(project=project, now=now)
    rules_evaluate(project=project, now=now)
    by_value = {a.scope["dimension"]["customer"]: a.level for a in Alert.objects.filter(rule=rule)}
    assert by_value == {"acme": 100, "globex": 80, "initech": 100}


def test_the_rules_page_counts_values_over_each_threshold(customers_project, manage_client, client, user):
    amount = Decimal("0.18")
    _per_value_budget(manage_client, amount=str(amount))
    client.force_login(user)
    page = client.get(f"/p/{customers_project[0].slug}/rules/").content.decode()
    totals = [sum(Decimal(c) for c in costs) for costs in SPEND.values()]
    for threshold in (50, 80, 100):
        count = sum(1 for total in totals if total * 100 >= amount * threshold)
        assert f"{count} at ≥ {threshold}%" in page
    assert "each customer" in page


def test_a_literal_star_value_is_not_stored_for_other_kinds(project, manage_client):
    project.dimensions = ["customer"]
    project.save()
    response = manage_client.post("/api/v1/rules", {"kind": "pro_default", "dimension": {"customer": "*"}},
                                  format="json")
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["dimension"]


def test_budget_status_says_whether_a_customer_is_over_its_budget(customers_project, manage_client, key_client):
    project, _now = customers_project
    rule = _per_value_budget(manage_client, amount="0.50")
    client = key_client(project, "ingest")
    spent = {customer: sum(Decimal(c) for c in costs) for customer, costs in SPEND.items()}

    acme = client.get("/api/v1/budget-status?attr.customer=acme").json()
    assert acme["over_budget"] is True and acme["feature"] is None and acme["dimension"] == {"customer": "acme"}
    [budget] = acme["budgets"]
    assert budget["rule_id"] == rule.pk and Decimal(budget["spent_usd"]) == spent["acme"] and budget["level"] == 100

    globex = client.get("/api/v1/budget-status?feature=support-chat&attr.customer=globex").json()
    assert globex["over_budget"] is False and globex["feature"] == "support-chat"
    [budget] = globex["budgets"]
    assert Decimal(budget["spent_usd"]) == spent["globex"] and budget["level"] is None


def test_budget_status_by_customer_covers_its_own_budget_and_the_project_not_other_customers(
        customers_project, key_client):
    project, _now = customers_project
    own = Rule.objects.create(project=project, kind="spend_budget", dimension={"customer": "initech"}, params={
        "period": "month", "amount_usd": "0.20", "thresholds": [100], "basis": "actual"})
    Rule.objects.create(project=project, kind="spend_budget", dimension={"customer": "acme"}, params={
        "period": "month", "amount_usd": "0.01", "thresholds": [100], "basis": "actual"})
    whole = Rule.objects.create(project=project, kind="spend_budget", params={
        "period": "month", "amount_usd": "100", "thresholds": [100], "basis": "actual"})
    body = key_client(project, "read").get("/api/v1/budget-status?attr.customer=initech").json()
    budgets = {b["rule_id"]: b for b in body["budgets"]}
    assert set(budgets) == {own.pk, whole.pk}
    total = sum(Decimal(c) for costs in SPEND.values() for c in costs)
    assert Decimal(budgets[whole.pk]["spent_usd"]) == total
    assert Decimal(budgets[own.pk]["spent_usd"]) == Decimal("0.20")  # initech's one call: exactly its budget
    assert body["over_budget"] is True


@pytest.mark.parametrize(("query", "field", "code"), [
    ("attr.plan=pro", "attr.plan", "unknown_dimension"),
    ("attr.customer=", "attr.customer", "invalid"),
    ("", "feature", "required"),
])
def test_budget_status_names_the_bad_parameter(customers_project, key_client, query, field, code):
    response = key_client(customers_project[0], "ingest").get(f"/api/v1/budget-status?{query}")
    assert response.status_code == 400
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [(field, code)]
