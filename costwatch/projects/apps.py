from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    name = "costwatch.projects"
    label = "projects"
    verbose_name = "Projects, members and API keys"

    def ready(self):
        from . import schema  # noqa: F401  (registers the OpenAPI auth extension)
