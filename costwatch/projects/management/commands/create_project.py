from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from costwatch.projects.services import project_create


class Command(BaseCommand):
    help = "Create a project (the slug is derived from the name unless given)."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--slug", default="")
        parser.add_argument("--timezone", default="UTC", help="IANA time zone for days, weeks and budgets [UTC]")
        parser.add_argument("--owner", help="username of an existing user who becomes the project's admin")

    def handle(self, *args, name, slug, timezone, owner, **options):
        owner_user = None
        if owner:
            owner_user = get_user_model().objects.filter(username=owner).first()
            if owner_user is None:
                raise CommandError(f"--owner: no user named {owner!r}")
        try:
            project = project_create(name=name, slug=slug, timezone_name=timezone, owner=owner_user)
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from exc
        self.stdout.write(f"created project {project.name!r} with slug {project.slug!r} ({project.timezone})")
