"""Read API v1 (docs/rollups.md#read-api): features, feature settings, timeseries, models, breakdown.

Views are thin: parse the shared parameters (costwatch.metrics.params), call a selector,
format money as decimal strings. The serializers describe response shapes for the OpenAPI
schema; responses are built as plain dicts.
"""


from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from costwatch.api import api_error, error_response, request_project
from costwatch.metrics import selectors
from costwatch.metrics.definitions import isoformat_z, money_str
from costwatch.metrics.params import ParamsInvalid, parse_read_params, parse_timeseries_params
from costwatch.projects.auth import HasManageScope, HasReadScope, request_api_key
from ingest.features import FEATURE_SETTINGS, feature_settings_update
from ingest.models import Feature


def Money(help_text="USD as a decimal string (>= 6 decimals); null when nothing is priced."):  # noqa: N802
    return serializers.CharField(allow_null=True, help_text=help_text)


def Share(help_text="0-1; null when the denominator is 0."):  # noqa: N802
    return serializers.FloatField(allow_null=True, help_text=help_text)


# --- parameters in the schema ------------------------------------------------------------------

def _query(name, description, type_=str, **kwargs):
    return OpenApiParameter(name, type_, OpenApiParameter.QUERY, description=description, **kwargs)


PROJECT_PARAM = _query("project", "Project slug; required for session (logged-in) requests, ignored with a key.")
RANGE_PARAMS = [
    _query("start", "RFC 3339 datetime with offset or a date (project timezone), floored to the hour; "
                    "default end - 30 days. On a project-timezone midnight for attr. filters, dimension "
                    "breakdowns and groups."),
    _query("end", "Exclusive, floored to the hour; default the start of the next hour (for data kept per "
                  "day: the next project-timezone midnight)."),
    _query("environment", "Only this environment; absent = all."),
    PROJECT_PARAM,
]
ATTR_NOTE = " Daily data also takes `attr.<dimension>=value` for one declared dimension."


class RangeEcho(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    environment = serializers.CharField(allow_null=True)


class FeatureRow(serializers.Serializer):
    feature = serializers.CharField()
    muted = serializers.BooleanField()
    expected_pro_share = serializers.FloatField(allow_null=True)
    calls = serializers.IntegerField(help_text="All roles.")
    requests = serializers.IntegerField(help_text="Primary calls.")
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cost_usd = Money()
    cost_per_call_usd = Money(help_text="cost / priced calls")
    pro_share = Share(help_text="Pro primary+escalation calls / all primary+escalation calls.")
    pro_share_change = serializers.FloatField(allow_null=True, help_text="7 days before end minus the 28 before.")
    uncapped_share = Share()
    cap_hit_share = Share()
    output_tokens_per_call = serializers.FloatField(allow_null=True)
    escalation_rate = Share()
    triage_cost_usd = Money()
    escalation_cost_usd = Money()
    shadow_cost_usd = Money()
    latency_p50_ms = serializers.FloatField(allow_null=True)
    latency_p95_ms = serializers.FloatField(allow_null=True)
    ttft_p50_ms = serializers.FloatField(allow_null=True)
    ttft_p95_ms = serializers.FloatField(allow_null=True)
    unpriced_calls = serializers.IntegerField()
    error_calls = serializers.IntegerField()


class FeatureList(RangeEcho):
    results = FeatureRow(many=True)


class FeatureSettings(serializers.Serializer):
    expected_pro_share = serializers.FloatField(min_value=0, max_value=1, allow_null=True, required=False)
    muted = serializers.BooleanField(required=False)

    def validate(self, attrs):
        unknown = sorted(set(self.initial_data) - set(FEATURE_SETTINGS))
        if unknown:
            raise serializers.ValidationError({unknown[0]: f"unknown field; settable: {', '.join(FEATURE_SETTINGS)}"})
        if not attrs:
            raise serializers.ValidationError(f"send at least one of {', '.join(FEATURE_SETTINGS)}")
        return attrs

    def to_internal_value(self, data):
        if "muted" in data and not isinstance(data["muted"], bool):
            raise serializers.ValidationError({"muted": "must be true or false"})
        return super().to_internal_value(data)


class FeatureSettingsOut(serializers.Serializer):
    feature = serializers.CharField()
    expected_pro_share = serializers.FloatField(allow_null=True)
    muted = serializers.BooleanField()


@extend_schema_field({"oneOf": [{"type": "string"}, {"type": "number"}, {"type": "integer"}], "nullable": True})
class SeriesValue(serializers.Field):
    def to_representation(self, value):
        return value


class SeriesPoint(serializers.Serializer):
    t = serializers.DateTimeField()
    value = SeriesValue(help_text="cost: decimal string; calls: integer; others: number or null.")
    group = serializers.CharField(required=False, help_text="Only with group_by.")


class Series(RangeEcho):
    feature = serializers.CharField(allow_null=True)
    metric = serializers.CharField()
    granularity = serializers.CharField()
    group_by = serializers.CharField(allow_null=True)
    results = SeriesPoint(many=True)


class ModelRow(serializers.Serializer):
    model = serializers.CharField()
    tier = serializers.CharField()
    price_source = serializers.ChoiceField(["override", "catalogue", "client", "none"],
                                           help_text="Where its price comes from now.")
    calls = serializers.IntegerField()
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cost_usd = Money()
    priced_calls = serializers.IntegerField()
    unpriced_calls = serializers.IntegerField()
    client_priced_calls = serializers.IntegerField()


class ModelList(RangeEcho):
    results = ModelRow(many=True)


class BreakdownRow(serializers.Serializer):
    value = serializers.CharField()
    cost_usd = Money()
    calls = serializers.IntegerField()
    pro_share = Share()
    unpriced_calls = serializers.IntegerField()


class Breakdown(RangeEcho):
    dimension = serializers.CharField()
    feature = serializers.CharField(allow_null=True)
    results = BreakdownRow(many=True)


# --- views ------------------------------------------------------------------------------------

def _echo(params, project) -> dict:
    """The window answered, in the project's timezone offset."""
    tzinfo = project.tzinfo
    return {"start": isoformat_z(params.start.astimezone(tzinfo)), "end": isoformat_z(params.end.astimezone(tzinfo)),
            "environment": params.environment}


def _format_money(row: dict) -> dict:
    return {key: money_str(value) if key.endswith("_usd") else value for key, value in row.items()}


def _known_feature(project, name, field="feature"):
    if name is not None and not project.features.filter(name=name).exists():
        raise ParamsInvalid([api_error(field, "not_found", f"no feature named {name!r} in this project")])
    return name


class ReadView(APIView):
    permission_classes = [HasReadScope]

    def handle_exception(self, exc):
        if isinstance(exc, ParamsInvalid):
            return error_response(exc.errors)
        return super().handle_exception(exc)


class FeaturesView(ReadView):
    @extend_schema(operation_id="features_list", summary="Per-feature metrics",
                   description="One row per feature, most expensive first. Daily data." + ATTR_NOTE,
                   parameters=RANGE_PARAMS, responses={200: FeatureList})
    def get(self, request):
        project = request_project(request)
        params = parse_read_params(request.query_params, project=project, daily=True)
        rows = selectors.feature_metrics(project=project, start=params.start, end=params.end,
                                         environment=params.environment, attrs=params.attrs or None)
        return Response({**_echo(params, project), "results": [_format_money(row) for row in rows]})


class FeatureDetailView(APIView):
    permission_classes = [HasManageScope]

    @extend_schema(operation_id="features_update", summary="Change a feature's expected Pro share or mute it",
                   parameters=[OpenApiParameter("name", OpenApiTypes.STR, OpenApiParameter.PATH), PROJECT_PARAM],
                   request=FeatureSettings, responses={200: FeatureSettingsOut})
    def patch(self, request, name):
        project = request_project(request)
        api_key = request_api_key(request)
        feature = Feature.objects.filter(project=project, name=name).first()
        if feature is None:
            raise exceptions.NotFound(f"no feature named {name!r} in this project")
        serializer = FeatureSettings(data=request.data if isinstance(request.data, dict) else {})
        serializer.is_valid(raise_exception=True)
        feature_settings_update(feature=feature, changes=serializer.validated_data,
                                actor=None if api_key else request.user,
                                actor_label=f"key:{api_key.key_id}" if api_key else "")
        return Response({"feature": feature.name, "expected_pro_share": feature.expected_pro_share,
                         "muted": feature.muted})


class TimeseriesView(ReadView):
    @extend_schema(
        operation_id="timeseries", summary="One metric over time, zero-filled",
        description="One point per hour or project-timezone day (and group) in [start, end)." + ATTR_NOTE,
        parameters=[
            _query("metric", "cost | calls | pro_share | output_tokens_per_call | uncapped_share", required=True),
            _query("granularity", "hour | day (default day)"),
            _query("group_by", "tier | role | model | a declared dimension (daily only)"),
            _query("feature", "Only this feature; absent = the whole project."),
            *RANGE_PARAMS,
        ],
        responses={200: Series},
    )
    def get(self, request):
        project = request_project(request)
        params = parse_timeseries_params(request.query_params, project=project)
        feature = _known_feature(project, request.query_params.get("feature") or None)
        points = selectors.timeseries(project=project, feature=feature, metric=params.metric,
                                      granularity=params.granularity, start=params.start, end=params.end,
                                      environment=params.environment, group_by=params.group_by,
                                      attrs=params.attrs or None)
        as_value = money_str if params.metric == "cost" else (lambda v: v)
        results = []
        for point in points:
            item = {"t": isoformat_z(point["t"]), "value": as_value(point["value"])}
            if "group" in point:
                item["group"] = point["group"]
            results.append(item)
        return Response({**_echo(params, project), "feature": feature, "metric": params.metric,
                         "granularity": params.granularity, "group_by": params.group_by, "results": results})


class ModelsView(ReadView):
    @extend_schema(operation_id="models_list", summary="Per model: tier, price source, calls, tokens, cost",
                   parameters=RANGE_PARAMS, responses={200: ModelList})
    def get(self, request):
        project = request_project(request)
        params = parse_read_params(request.query_params, project=project, daily=True, allow_attrs=False)
        rows = selectors.model_metrics(project=project, start=params.start, end=params.end,
                                       environment=params.environment)
        return Response({**_echo(params, project), "results": [_format_money(row) for row in rows]})


class BreakdownView(ReadView):
    @extend_schema(
        operation_id="breakdown", summary="Cost, calls and Pro share per value of a declared dimension",
        parameters=[_query("dimension", "A declared dimension, e.g. customer.", required=True),
                    _query("feature", "Only this feature."), *RANGE_PARAMS],
        responses={200: Breakdown},
    )
    def get(self, request):
        project = request_project(request)
        dimension = request.query_params.get("dimension") or ""
        declared = list(project.dimensions or [])
        if dimension not in declared:
            code, detail = ("required", "give ?dimension=") if not dimension else ("unknown_dimension", "")
            raise ParamsInvalid([api_error("dimension", code, f"{detail or repr(dimension) + ' is not'} "
                                           f"a declared dimension ({', '.join(declared) or 'none declared'})")])
        params = parse_read_params(request.query_params, project=project, daily=True, day_only=True)
        feature = _known_feature(project, request.query_params.get("feature") or None)
        other = [d for d in params.attrs if d != dimension]
        if other:
            raise ParamsInvalid([api_error(f"attr.{other[0]}", "not_with_dimension",
                                           f"a breakdown by {dimension} can only be filtered on attr.{dimension}")])
        rows = selectors.dimension_breakdown(project=project, dimension=dimension, start=params.start,
                                             end=params.end, feature=feature, environment=params.environment)
        if params.attrs:
            rows = [row for row in rows if row["value"] == params.attrs[dimension]]
        return Response({**_echo(params, project), "dimension": dimension, "feature": feature,
                         "results": [_format_money(row) for row in rows]})
