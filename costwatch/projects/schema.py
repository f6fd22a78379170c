"""OpenAPI description of the Bearer API key authentication."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "costwatch.projects.auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "cw_<key id>_<secret>",
            "description": "An API key issued on the API keys page or with `manage.py issue_key`.",
        }
