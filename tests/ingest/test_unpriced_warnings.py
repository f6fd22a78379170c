"""An event stored without a price gets an `unpriced_model` warning, with a hint when a near
match has a price; warnings are capped per event and per response."""

import json

import pytest

from ingest.models import Event
from tests.ingest.helpers import event, price

pytestmark = pytest.mark.django_db
URL = "/api/v1/events"
STORED_UNPRICED = "has no price{scope}: stored unpriced until a price for it is added"


def post(client, events):
    return client.post(URL, data=json.dumps({"events": events}), content_type="application/json")


@pytest.fixture
def zeta_prices():
    price("zeta-2-mini", provider="zetacorp")
    price("zeta-2-pro*", provider="zetacorp", tier="pro")


def message(model, hint="", provider=""):
    scope = f" for provider {provider!r}" if provider else ""
    text = f"model {model!r} " + STORED_UNPRICED.format(scope=scope)
    return f"{text}; {hint}" if hint else text


CASES = [
    # (model, provider, hint)
    ("my-finetune-v1", "", ""),
    ("ZETA-2-mini", "", "model ids are case-sensitive and 'zeta-2-mini' has a price"),
    ("zetacorp/zeta-2-mini", "", "send model 'zeta-2-mini' with provider 'zetacorp' (a provider prefix is not part "
                                 "of the id)"),
    ("zeta-2-mini", "azure", "'zeta-2-mini' has a price for provider 'zetacorp', not 'azure': add a price for "
                             "'azure' or leave provider out"),
    ("zeta2-mini", "", "did you mean 'zeta-2-mini'?"),
    ("zeta2-pro-0807", "", "did you mean 'zeta-2-pro'?"),
    ("zeta-9-ultra", "", "other zeta models have prices (zeta-2-mini, zeta-2-pro*): check the id"),
]


# The fast path (distinct ids) and the dict path (a repeated id sends the batch there).
@pytest.mark.parametrize("repeat", [False, True], ids=["fast-path", "dict-path"])
def test_each_unpriced_event_is_warned_in_request_order_with_a_hint(ingest_client, zeta_prices, repeat):
    events = [event("z-priced", model="zeta-2-mini", provider="zetacorp")]
    events += [event(f"{9 - i}-unpriced", model=model, **({"provider": provider} if provider else {}))
               for i, (model, provider, _hint) in enumerate(CASES)]
    events.append(event("client-priced", model="my-finetune-v1", cost_usd="0.002"))
    if repeat:
        events.append(events[0])
    response = post(ingest_client, events)
    assert response.status_code == 200, response.json()
    assert response.json()["warnings"] == [
        {"index": i + 1, "event_id": f"{9 - i}-unpriced", "field": "model", "code": "unpriced_model",
         "message": message(model, hint, provider)} for i, (model, provider, hint) in enumerate(CASES)]
    assert Event.objects.filter(cost_usd=None).count() == len(CASES)


def test_unpriced_warnings_follow_event_order_and_stop_at_200_per_response(ingest_client):
    many = [event("a-first", model="no-price-model", extra_field=1)]
    many += [event(f"b-{n:03}", model="no-price-model") for n in range(250)]
    warnings = post(ingest_client, many).json()["warnings"]
    assert [(w.get("index"), w["code"]) for w in warnings[:3]] == [
        (0, "unknown_field"), (0, "unpriced_model"), (1, "unpriced_model")]
    assert len(warnings) == 201 and [w["event_id"] for w in warnings[2:200]] == [f"b-{n:03}" for n in range(198)]
    assert warnings[200] == {"field": None, "code": "too_many_warnings", "message": "52 more warnings were left out"}
    assert Event.objects.count() == 251
