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


def project_object_views(name: str, *, listed, one, output, input_, create, update, delete):
    """The list/create and retrieve/update/destroy endpoints of one kind of project object (rules,
    channels), for a `manage` key or an admin session. The input serializer validates (given the
    object being updated as `instance_<noun>`), the services write with the audit actor (given
    the object as `<noun>`); `listed` and `one` are the querysets of the list and of one object.
    `name` ("rules") names the operations; its singular is the noun."""
    noun, item = name.removesuffix("s"), output.__name__.removesuffix("Serializer")

    class ListView(PagedListMixin, GenericAPIView):
        permission_classes = [HasManageScope]
        serializer_class = output

        @extend_schema(operation_id=f"{name}_list", parameters=[PROJECT_PARAM],
                       responses={200: paged_response(f"{item}List", output)})
        def get(self, request):
            return self.paged(listed.filter(project=request_project(request)), output)

        @extend_schema(operation_id=f"{name}_create", parameters=[PROJECT_PARAM], request=input_,
                       responses={201: output})
        def post(self, request):
            project = request_project(request)
            serializer = input_(data=request.data, project=project)
            serializer.is_valid(raise_exception=True)
            actor, label = actor_of(request)
            created = create(project=project, data=dict(serializer.validated_data), actor=actor, actor_label=label)
            return Response(output(created).data, status=status.HTTP_201_CREATED)

    class DetailView(GenericAPIView):
        permission_classes = [HasManageScope]
        serializer_class = output

        @staticmethod
        def object(project, object_id: dict):
            (pk,) = object_id.values()  # the URL's <int:rule_id> or <int:channel_id>
            return get_object_or_404(one, project=project, pk=pk)

        @extend_schema(operation_id=f"{name}_retrieve", parameters=[PROJECT_PARAM], responses={200: output})
        def get(self, request, **object_id):
            return Response(output(self.object(request_project(request), object_id)).data)

        @extend_schema(operation_id=f"{name}_update", parameters=[PROJECT_PARAM], request=input_,
                       responses={200: output})
        def patch(self, request, **object_id):
            project = request_project(request)
            instance = self.object(project, object_id)
            serializer = input_(data=request.data, project=project, partial=True, **{f"instance_{noun}": instance})
            serializer.is_valid(raise_exception=True)
            actor, label = actor_of(request)
            updated = update(**{noun: instance}, data=dict(serializer.validated_data), actor=actor, actor_label=label)
            return Response(output(updated).data)

        @extend_schema(operation_id=f"{name}_destroy", parameters=[PROJECT_PARAM], responses={204: None})
        def delete(self, request, **object_id):
            actor, label = actor_of(request)
            delete(**{noun: self.object(request_project(request), object_id)}, actor=actor, actor_label=label)
            return Response(status=status.HTTP_204_NO_CONTENT)

    ListView.__name__ = ListView.__qualname__ = f"{item}ListView"
    DetailView.__name__ = DetailView.__qualname__ = f"{item}DetailView"
    return ListView, DetailView


RuleListView, RuleDetailView = project_object_views(
    "rules", listed=Rule.objects.select_related("feature"), one=Rule.objects.select_related("feature", "project"),
    output=RuleSerializer, input_=RuleInputSerializer,
    create=services.rule_create, update=services.rule_update, delete=services.rule_delete)
ChannelListView, ChannelDetailView = project_object_views(
    "channels", listed=Channel.objects.prefetch_related("rules"), one=Channel.objects.select_related("project"),
    output=ChannelSerializer, input_=ChannelInputSerializer,
    create=services.channel_create, update=services.channel_update, delete=services.channel_delete)


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
