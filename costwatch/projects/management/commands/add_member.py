from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from costwatch.cli import project_argument, project_named
from costwatch.projects.models import Membership
from costwatch.projects.services import membership_set


class Command(BaseCommand):
    help = "Make a user a viewer or admin of a project."

    def add_arguments(self, parser):
        project_argument(parser, required=True)
        parser.add_argument("--user", required=True, help="username")
        parser.add_argument("--role", required=True, choices=[r for r, _ in Membership.ROLES])

    def handle(self, *args, project, user, role, **options):
        project_obj = project_named(project)
        user_obj = get_user_model().objects.filter(username=user).first()
        if user_obj is None:
            raise CommandError(f"--user: no user named {user!r}")
        membership_set(project=project_obj, user=user_obj, role=role)
        self.stdout.write(f"{user_obj.username} is now {role} of {project_obj.slug}")
