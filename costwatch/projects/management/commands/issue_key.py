from django.core.management.base import BaseCommand

from costwatch.cli import project_argument, project_named
from costwatch.projects.models import SCOPES
from costwatch.projects.services import api_key_issue


class Command(BaseCommand):
    help = "Issue an API key for a project. The key is printed once, on the last line."

    def add_arguments(self, parser):
        project_argument(parser, required=True)
        parser.add_argument("--scope", action="append", required=True, choices=SCOPES, dest="scopes")
        parser.add_argument("--name", default="", help="a label to recognise the key by")

    def handle(self, *args, project, scopes, name, **options):
        project_obj = project_named(project)
        issued = api_key_issue(project=project_obj, scopes=scopes, name=name, actor_label="manage.py issue_key")
        self.stderr.write(f"issued key {issued.api_key.key_id} for {project_obj.slug} with scopes "
                          f"{', '.join(issued.api_key.scopes)}; it is shown only now:")
        self.stdout.write(issued.plaintext)
