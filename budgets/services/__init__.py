"""Writes for rules, alerts, channels and deliveries; the rule cycle (see docs/alerts.md).

One module per concern, along the data flow:
- `cycle`: default rules, then one verdict per rule and scope (budgets.rules is pure);
- `lifecycle`: alerts move open -> acknowledged -> resolved with conditional UPDATEs, and each
  notice writes one Delivery row per matching channel in the same transaction;
- `deliveries`: `deliveries_send_due` claims and sends them (and the channels' Test button);
- `config`: rule and channel writes with their audit log;
- `guard`: the budget status an app asks before a call;
- `digest`: the daily email.
"""

from .config import channel_create, channel_delete, channel_update, rule_create, rule_delete, rule_update
from .cycle import (
    budget_numbers,
    budget_period_elapsed,
    budget_value_counts,
    default_rules_ensure,
    rules_evaluate,
)
from .deliveries import (
    backoff_seconds,
    channel_test,
    channel_test_request,
    deliveries_claim_due,
    deliveries_send_due,
    delivery_attempt,
)
from .digest import digests_send_due
from .guard import budget_status, value_budget_levels
from .lifecycle import Evaluation, alert_acknowledge, alerts_close_silently

__all__ = [
    "Evaluation", "alert_acknowledge", "alerts_close_silently", "backoff_seconds",
    "budget_numbers", "budget_period_elapsed", "budget_status", "budget_value_counts", "channel_create",
    "channel_delete", "channel_test", "channel_test_request", "channel_update", "default_rules_ensure",
    "deliveries_claim_due", "deliveries_send_due", "delivery_attempt", "digests_send_due", "rules_evaluate",
    "rule_create", "rule_delete", "rule_update", "value_budget_levels",
]
