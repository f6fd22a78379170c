"""Input and output shapes of rules, channels, alerts and budget status (docs/alerts.md).

Used by the API and by the pages' forms, so both validate the same way and name the
field at fault (`params.amount_usd`, `dimension`, `target`).
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import EmailValidator, URLValidator
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

from ingest.event_fields import FEATURE_RE
from ingest.models import Feature

from . import rules as rule_functions
from .models import FEATURE_KINDS, KIND_SPEND_BUDGET, RULE_KINDS, Alert, Channel, Rule
from .transports import slack_target_problem


def _error(field, message, code="invalid"):
    parts = field.split(".")
    detail = [ErrorDetail(message, code=code)]
    for part in reversed(parts[1:]):
        detail = {part: detail}
    return serializers.ValidationError({parts[0]: detail})


def _kind_written(instance, attrs, noun: str) -> str:
    """The kind a write is for: the new object's, or the instance's, which cannot change."""
    if instance is not None and "kind" in attrs and attrs["kind"] != instance.kind:
        raise _error("kind", f"cannot change; create a new {noun} instead")
    return attrs.get("kind") or instance.kind


class RuleInputSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=[k for k, _ in RULE_KINDS])
    feature = serializers.CharField(max_length=100, required=False, allow_null=True, allow_blank=True)
    model = serializers.CharField(max_length=200, required=False, allow_blank=True, allow_null=True)
    tier = serializers.ChoiceField(choices=["lite", "pro", "unknown", ""], required=False, allow_null=True)
    environment = serializers.CharField(max_length=50, required=False, allow_null=True,
                                        help_text="Default production; null = all environments.")
    dimension = serializers.DictField(child=serializers.CharField(max_length=200), required=False, allow_null=True,
                                      help_text='One declared dimension and its value, e.g. {"customer": "acme"}.')
    params = serializers.DictField(required=False, help_text="Per-kind parameters; defaults fill the rest.")
    cooldown_hours = serializers.IntegerField(min_value=1, max_value=24 * 30, required=False)
    enabled = serializers.BooleanField(required=False)

    def __init__(self, *args, project=None, instance_rule=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.project = project
        self.instance_rule = instance_rule

    def validate(self, attrs):
        rule = self.instance_rule
        kind = _kind_written(rule, attrs, "rule")
        clean = {"kind": kind}
        if "feature" in attrs:
            clean["feature"], clean["awaited_feature"] = self._feature(attrs["feature"])
        for name in ("model", "tier"):
            if name in attrs:
                clean[name] = attrs[name] or ""
        if "environment" in attrs:
            clean["environment"] = attrs["environment"] or None
        if "dimension" in attrs:
            clean["dimension"] = self._dimension(attrs["dimension"])
        scope = {**(_rule_scope(rule) if rule else {}), **clean}
        scope["feature"] = scope.pop("feature", None) or scope.pop("awaited_feature", None) or None
        self._check_scope(kind, scope)
        base = rule.params if rule is not None and "params" in attrs else {}
        if "params" in attrs or rule is None:
            params, errors = rule_functions.params_clean(kind, {**base, **attrs.get("params", {})})
            if errors:
                raise _params_error(errors)
            clean["params"] = params
        for name in ("cooldown_hours", "enabled"):
            if name in attrs:
                clean[name] = attrs[name]
        if rule is not None:
            clean.pop("kind")
        return clean

    def _feature(self, name) -> tuple[Feature | None, str]:
        """(the Feature, "") when it has sent events, else (None, name): a rule set up before
        launch waits for the feature's first event. The name must be one an event could carry."""
        if not name:
            return None, ""
        feature = Feature.objects.filter(project=self.project, name=name).first()
        if feature is not None:
            return feature, ""
        if not FEATURE_RE.match(name):
            raise _error("feature", "must be letters, digits and . _ : - only (the events' feature pattern)")
        return None, name

    def _dimension(self, value):
        if not value:
            return None
        if len(value) != 1:
            raise _error("dimension", "give exactly one dimension and value, e.g. {\"customer\": \"acme\"}")
        (key, _), = value.items()
        if key not in (self.project.dimensions or []):
            declared = ", ".join(self.project.dimensions or []) or "none declared (Settings page)"
            raise _error("dimension", f"{key!r} is not a declared dimension of this project: {declared}",
                         "unknown_dimension")
        return dict(value)

    @staticmethod
    def _check_scope(kind, scope):
        if kind != KIND_SPEND_BUDGET:
            for name in ("model", "tier", "dimension"):
                if scope.get(name):
                    raise _error(name, f"only spend_budget rules can be scoped to a {name}")
        if kind not in FEATURE_KINDS and kind != KIND_SPEND_BUDGET and scope.get("feature"):
            raise _error("feature", f"{kind} is a project rule; it cannot be scoped to a feature")
        if scope.get("dimension") and (scope.get("model") or scope.get("tier")):
            raise _error("dimension", "dimension budgets cannot also name a model or tier "
                                      "(dimension spend is kept per feature and day only)")


def _params_error(errors):
    """[(field, code, message)] from rules.params_clean -> one error per `params.<name>`."""
    nested = {}
    for field, code, message in errors:
        if "." not in field:
            return _error(field, message, code)
        nested.setdefault(field.split(".", 1)[1], []).append(ErrorDetail(message, code=code))
    return serializers.ValidationError({"params": nested})


def _rule_scope(rule):
    return {"feature": rule.feature_name, "model": rule.model, "tier": rule.tier, "dimension": rule.dimension}


class RuleSerializer(serializers.ModelSerializer):
    feature = serializers.SerializerMethodField()

    class Meta:
        model = Rule
        fields = ["id", "kind", "feature", "model", "tier", "environment", "dimension", "params", "cooldown_hours",
                  "enabled", "is_default", "created_at", "updated_at"]

    def get_feature(self, rule) -> str | None:
        return rule.feature_name


class ChannelInputSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=[k for k, _ in Channel.KINDS])
    name = serializers.CharField(max_length=100)
    target = serializers.CharField(max_length=2000, write_only=True,
                                   help_text="Email addresses (comma-separated) or the webhook URL; write-only.")
    secret = serializers.CharField(max_length=200, required=False, allow_blank=True, write_only=True,
                                   help_text="Webhook signing secret; write-only.")
    rules = serializers.ListField(child=serializers.IntegerField(), required=False,
                                  help_text="Rule ids; empty = every alert of the project.")
    enabled = serializers.BooleanField(required=False)

    def __init__(self, *args, project=None, instance_channel=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.project = project
        self.instance_channel = instance_channel
        if instance_channel is not None:
            for field in self.fields.values():
                field.required = False

    def validate(self, attrs):
        channel = self.instance_channel
        kind = _kind_written(channel, attrs, "channel")
        if "target" in attrs:
            attrs["target"] = self._target(kind, attrs["target"].strip())
        if "rules" in attrs:
            ids = set(attrs["rules"])
            found = list(Rule.objects.filter(project=self.project, pk__in=ids))
            if len(found) != len(ids):
                missing = sorted(ids - {r.pk for r in found})
                raise _error("rules", f"no rule with id {missing[0]} in this project", "not_found")
            attrs["rules"] = found
        if channel is not None:
            attrs.pop("kind", None)
        return attrs

    @staticmethod
    def _target(kind, target):
        if kind == Channel.EMAIL:
            addresses = Channel.email_addresses(target)
            if not addresses:
                raise _error("target", "give at least one email address")
            for address in addresses:
                try:
                    EmailValidator()(address)
                except DjangoValidationError:
                    raise _error("target", f"{address!r} is not an email address") from None
            return ", ".join(addresses)
        try:
            URLValidator(schemes=["http", "https"])(target)
        except DjangoValidationError:
            raise _error("target", "must be an http(s) URL (the incoming webhook URL)") from None
        if kind == Channel.SLACK and slack_target_problem(target):
            raise _error("target", slack_target_problem(target))
        return target


class ChannelSerializer(serializers.ModelSerializer):
    rules = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    has_secret = serializers.SerializerMethodField()

    class Meta:
        model = Channel
        fields = ["id", "kind", "name", "rules", "enabled", "has_secret", "created_at", "last_test_at",
                  "last_test_error"]

    def get_has_secret(self, channel) -> bool:
        return bool(channel.secret)


class AlertSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    rule_id = serializers.IntegerField(allow_null=True)
    feature = serializers.CharField(allow_null=True)
    scope = serializers.DictField()
    level = serializers.IntegerField(allow_null=True)
    state = serializers.ChoiceField(choices=[s for s, _ in Alert.STATES])
    opened_at = serializers.DateTimeField()
    acknowledged_at = serializers.DateTimeField(allow_null=True)
    resolved_at = serializers.DateTimeField(allow_null=True)
    numbers = serializers.DictField()
    message = serializers.CharField()
    url = serializers.URLField()

    def to_representation(self, alert):
        return alert.as_dict()


class BudgetSerializer(serializers.Serializer):
    rule_id = serializers.IntegerField()
    period = serializers.ChoiceField(choices=["day", "week", "month"])
    amount_usd = serializers.CharField()
    spent_usd = serializers.CharField()
    forecast_usd = serializers.CharField(allow_null=True)
    level = serializers.IntegerField(allow_null=True)


class BudgetStatusSerializer(serializers.Serializer):
    feature = serializers.CharField(allow_null=True, help_text="null when asked by dimension value only.")
    dimension = serializers.DictField(child=serializers.CharField(), allow_null=True,
                                      help_text='The dimension value asked about, e.g. {"customer": "acme"}; '
                                                'null without attr.<dimension>.')
    over_budget = serializers.BooleanField()
    budgets = BudgetSerializer(many=True)
