from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView


class KeyInfoView(APIView):
    """Which project and scopes the presented API key has: a quick way to check a key works."""

    project_scoped = False  # no ?project=: nothing here can be "not found" (see costwatch.openapi)

    @extend_schema(
        responses=inline_serializer("KeyInfo", {
            "project": serializers.CharField(), "key_id": serializers.CharField(),
            "scopes": serializers.ListField(child=serializers.CharField()),
        }),
    )
    def get(self, request):
        api_key = getattr(request.user, "api_key", None)
        if api_key is None:
            return Response({"errors": [{"field": None, "code": "not_a_key",
                                         "message": "this endpoint describes API keys; send one as Bearer"}]},
                            status=400)
        return Response({"project": api_key.project.slug, "key_id": api_key.key_id, "scopes": api_key.scopes})
