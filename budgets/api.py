"""Rules, channels, alerts and budget status API (docs/alerts.md, docs/rollups.md#read-api). Views are thin: serializers
validate, services write (with the audit log), selectors read."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from costwatch.api import CreatedCursorPagination, api_error, error_response, request_project
from costwatch.openapi import ErrorsSerializer
from costwatch.projects.auth import HasManageScope, HasReadScope, request_api_key, scope_permission
from ingest.event_fields import FEATURE

from . import selectors, services
from .models import Alert, Channel, Rule
from .serializers import (
    AlertSerializer,
    BudgetStatusSerializer,
    ChannelInputSerializer,
    ChannelSerializer,
    RuleInputSerializer,
    RuleSerializer,
)

PROJECT_PARAM = OpenApiParameter("project", str, required=False,
                                 description="Project slug; only for logged-in sessions (a key knows its project).")


HasIngestOrReadScope = scope_permission("ingest", "read")


def actor_of(request):
    """(actor user or None, label) for the audit log: a session user, or the key."""
    api_key = request_api_key(request)
    if api_key is not None:
        return None, f"key:{api_key.key_id}"
    return request.user, request.user.get_username()


class PagedListMixin:
    pagination_class = CreatedCursorPagination

    def paged(self, queryset, serializer_class):
        page = self.paginate_queryset(queryset)
        return Response({"results": serializer_class(page, many=True).data, "next": self.paginator.get_next_link()})


def paged_response(name, item):
    return inline_serializer(name, {"results": item(many=True), "next": serializers.URLField(allow_null=True)})


class RuleListView(PagedListMixin, GenericAPIView):
    permission_classes = [HasManageScope]
    serializer_class = RuleSerializer

    @extend_schema(operation_id="rules_list", parameters=[PROJECT_PARAM],
                   responses={200: paged_response("RuleList", RuleSerializer)})
    def get(self, request):
        project = request_project(request)
        return self.paged(Rule.objects.filter(project=project).select_related("feature"), RuleSerializer)

    @extend_schema(operation_id="rules_create", parameters=[PROJECT_PARAM], request=RuleInputSerializer,
                   responses={201: RuleSerializer})
    def post(self, request):
        project = request_project(request)
        serializer = RuleInputSerializer(data=request.data, project=project)
        serializer.is_valid(raise_exception=True)
        actor, label = actor_of(request)
        rule = services.rule_create(project=project, data=serializer.validated_data, actor=actor, actor_label=label)
        return Response(RuleSerializer(rule).data, status=status.HTTP_201_CREATED)


class RuleDetailView(GenericAPIView):
    permission_classes = [HasManageScope]
    serializer_class = RuleSerializer

    def rule(self, project, rule_id):
        return get_object_or_404(Rule.objects.select_related("feature", "project"), project=project, pk=rule_id)

    @extend_schema(operation_id="rules_retrieve", parameters=[PROJECT_PARAM], responses={200: RuleSerializer})
    def get(self, request, rule_id):
        return Response(RuleSerializer(self.rule(request_project(request), rule_id)).data)

    @extend_schema(operation_id="rules_update", parameters=[PROJECT_PARAM], request=RuleInputSerializer,
                   responses={200: RuleSerializer})
    def patch(self, request, rule_id):
        project = request_project(request)
        rule = self.rule(project, rule_id)
        serializer = RuleInputSerializer(data=request.data, project=project, instance_rule=rule, partial=True)
        serializer.is_valid(raise_exception=True)
        actor, label = actor_of(request)
        rule = services.rule_update(rule=rule, data=serializer.validated_data, actor=actor, actor_label=label)
        return Response(RuleSerializer(rule).data)

    @extend_schema(operation_id="rules_destroy", parameters=[PROJECT_PARAM], responses={204: None})
    def delete(self, request, rule_id):
        project = request_project(request)
        actor, label = actor_of(request)
        services.rule_delete(rule=self.rule(project, rule_id), actor=actor, actor_label=label)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ChannelListView(PagedListMixin, GenericAPIView):
    permission_classes = [HasManageScope]
    serializer_class = ChannelSerializer

    @extend_schema(operation_id="channels_list", parameters=[PROJECT_PARAM],
                   responses={200: paged_response("ChannelList", ChannelSerializer)})
    def get(self, request):
        project = request_project(request)
        return self.paged(Channel.objects.filter(project=project).prefetch_related("rules"), ChannelSerializer)

    @extend_schema(operation_id="channels_create", parameters=[PROJECT_PARAM], request=ChannelInputSerializer,
                   responses={201: ChannelSerializer})
    def post(self, request):
        project = request_project(request)
        serializer = ChannelInputSerializer(data=request.data, project=project)
        serializer.is_valid(raise_exception=True)
        actor, label = actor_of(request)
        channel = services.channel_create(project=project, data=dict(serializer.validated_data), actor=actor,
                                          actor_label=label)
        return Response(ChannelSerializer(channel).data, status=status.HTTP_201_CREATED)


class ChannelDetailView(GenericAPIView):
    permission_classes = [HasManageScope]
    serializer_class = ChannelSerializer

    def channel(self, project, channel_id):
        return get_object_or_404(Channel.objects.select_related("project"), project=project, pk=channel_id)

    @extend_schema(operation_id="channels_retrieve", parameters=[PROJECT_PARAM], responses={200: ChannelSerializer})
    def get(self, request, channel_id):
        return Response(ChannelSerializer(self.channel(request_project(request), channel_id)).data)

    @extend_schema(operation_id="channels_update", parameters=[PROJECT_PARAM], request=ChannelInputSerializer,
                   responses={200: ChannelSerializer})
    def patch(self, request, channel_id):
        project = request_project(request)
        channel = self.channel(project, channel_id)
        serializer = ChannelInputSerializer(data=request.data, project=project, instance_channel=channel,
                                            partial=True)
        serializer.is_valid(raise_exception=True)
        actor, label = actor_of(request)
        channel = services.channel_update(channel=channel, data=dict(serializer.validated_data), actor=actor,
                                          actor_label=label)
        return Response(ChannelSerializer(channel).data)

    @extend_schema(operation_id="channels_destroy", parameters=[PROJECT_PARAM], responses={204: None})
    def delete(self, request, channel_id):
        project = request_project(request)
        actor, label = actor_of(request)
        services.channel_delete(channel=self.channel(project, channel_id), actor=actor, actor_label=label)
        return Response(status=status.HTTP_204_NO_CONTENT)


class AlertListView(PagedListMixin, GenericAPIView):
    permission_classes = [HasReadScope]
    serializer_class = AlertSerializer

    @extend_schema(operation_id="alerts_list", parameters=[
        PROJECT_PARAM, OpenApiParameter("state", str, enum=[s for s, _ in Alert.STATES], required=False)],
        responses={200: paged_response("AlertList", AlertSerializer)})
    def get(self, request):
        project = request_project(request)
        state = request.query_params.get("state") or None
        if state is not None and state not in dict(Alert.STATES):
            return error_response([api_error("state", "invalid_choice", "must be open, acknowledged or resolved")])
        return self.paged(selectors.alerts_list(project=project, state=state), AlertSerializer)


class AlertAckView(GenericAPIView):
    permission_classes = [HasReadScope]
    serializer_class = AlertSerializer

    @extend_schema(operation_id="alerts_ack", parameters=[PROJECT_PARAM], request=None,
                   responses={200: AlertSerializer, 409: OpenApiResponse(ErrorsSerializer, description="The alert is already resolved.")})
    def post(self, request, alert_id):
        project = request_project(request)
        alert = get_object_or_404(Alert.objects.select_related("project"), project=project, pk=alert_id)
        _actor, label = actor_of(request)
        services.alert_acknowledge(alert=alert, actor_label=label)
        alert.refresh_from_db()
        if alert.state == Alert.RESOLVED:
            return error_response([api_error(None, "resolved", "the alert is already resolved")],
                                  status.HTTP_409_CONFLICT)
        return Response(AlertSerializer(alert).data)


class BudgetStatusView(GenericAPIView):
    permission_classes = [HasIngestOrReadScope]
    serializer_class = BudgetStatusSerializer

    @extend_schema(
        operation_id="budget_status",
        description="Is a budget that covers this call blown? Give `feature`, or `attr.<dimension>=value` for one "
                    "declared dimension (e.g. `attr.customer=acme`), or both. With a value it also covers the "
                    "budgets on that value and the per-value (`\"*\"`) budgets of its dimension. Cached up to "
                    "BUDGET_STATUS_CACHE_SECONDS.",
        parameters=[PROJECT_PARAM,
                    OpenApiParameter("feature", str, required=False,
                                     description="The feature about to call; required unless an attr.<dimension> "
                                                 "is given.")],
        responses={200: BudgetStatusSerializer})
    def get(self, request):
        project = request_project(request)
        feature = (request.query_params.get("feature") or "").strip()
        errors, dimension_value = [], None
        if len(feature) > 100:
            errors.append(api_error("feature", "max_length", "at most 100 characters"))
        elif feature and not FEATURE.pattern.match(feature):
            errors.append(api_error("feature", "invalid", FEATURE.charset_message))
        attrs = [key for key in request.query_params if key.startswith("attr.")]
        for key in attrs:
            dimension, value = key[len("attr."):], request.query_params.get(key).strip()
            if dimension not in (project.dimensions or []):
                known = ", ".join(project.dimensions or []) or "none declared"
                errors.append(api_error(key, "unknown_dimension",
                                        f"{dimension!r} is not a declared dimension of this project ({known})"))
            elif not value or len(value) > 200:
                errors.append(api_error(key, "invalid", "give a value of 1-200 characters, e.g. attr.customer=acme"))
            else:
                dimension_value = (dimension, value)
        if len(attrs) > 1:
            errors.append(api_error(attrs[1], "one_dimension_only", "ask about one dimension value at a time"))
        if not feature and not attrs:
            errors.append(api_error("feature", "required", "give ?feature=<name>, attr.<dimension>=<value> or both"))
        if errors:
            return error_response(errors)
        return Response(services.budget_status(project=project, feature_name=feature or None,
                                               dimension_value=dimension_value))
