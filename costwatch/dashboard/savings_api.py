"""`GET /api/v1/recommendations` (docs/savings.md#recommendations): the savings moves, ranked by dollars."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from costwatch.api import request_project
from costwatch.metrics.params import ParamsInvalid, _choice
from costwatch.metrics.selectors.recommendations import (
    DEFAULT_WINDOW,
    MOVES,
    STATUSES,
    WINDOWS,
    recommendations,
)

from .api import PROJECT_PARAM, ReadView, _known_feature, _query


class EvidenceSerializer(serializers.Serializer):
    pairs = serializers.IntegerField(help_text="Lite/Pro shadow pairs with both scores in the window.")
    mean_diff = serializers.FloatField(allow_null=True, help_text="Mean of Lite - Pro quality; null with 0 pairs.")
    ci_low = serializers.FloatField(allow_null=True, help_text="95% t-interval; null with fewer than 2 pairs.")
    ci_high = serializers.FloatField(allow_null=True)
    lite_at_least_as_good_share = serializers.FloatField(allow_null=True)
    window = serializers.ChoiceField(list(WINDOWS), help_text="The window the figures cover (the `window` asked).")
    lite_latency_p50_ms = serializers.FloatField(allow_null=True)
    pro_latency_p50_ms = serializers.FloatField(allow_null=True)
    newest_pair = serializers.DateTimeField(allow_null=True)
    null_reasons = serializers.DictField(child=serializers.CharField(), help_text="Why a figure is null.")


class RecommendationSerializer(serializers.Serializer):
    feature = serializers.CharField()
    move = serializers.ChoiceField(MOVES)
    status = serializers.ChoiceField(STATUSES)
    monthly_savings_usd = serializers.CharField(allow_null=True, help_text="USD per month at current prices; "
                                                                           "null when a model has no price.")
    target_pro_share = serializers.FloatField(required=False)
    route_reason = serializers.CharField(required=False)
    cap_tokens = serializers.IntegerField(required=False)
    lite_model = serializers.CharField(required=False)
    evidence = EvidenceSerializer()
    escalation_evidence = EvidenceSerializer(required=False, help_text="Escalation pairs, beside (never pooled).")
    message = serializers.CharField()


class RecommendationList(serializers.Serializer):
    results = RecommendationSerializer(many=True)


class RecommendationsView(ReadView):
    @extend_schema(
        operation_id="recommendations_list", summary="Savings moves ranked by dollars per month, with evidence",
        parameters=[_query("feature", "Only this feature."),
                    _query("status", f"Only this status: {', '.join(STATUSES)}.", enum=list(STATUSES)),
                    _query("window", f"The window the savings and evidence cover, ending at the start of the next "
                                     f"hour [{DEFAULT_WINDOW}]; monthly = window savings x 30 / window days.",
                           enum=list(WINDOWS), default=DEFAULT_WINDOW),
                    PROJECT_PARAM],
        responses={200: RecommendationList}, tags=["savings"],
    )
    def get(self, request):
        project = request_project(request)
        query = request.query_params
        errors: list[dict] = []
        status = _choice(query, "status", STATUSES, errors)
        window = _choice(query, "window", list(WINDOWS), errors, default=DEFAULT_WINDOW)
        if errors:
            raise ParamsInvalid(errors)
        feature = _known_feature(project, query.get("feature") or None)
        return Response({"results": recommendations(project=project, feature=feature, status=status, window=window)})
