from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from costwatch.projects.models import Project
from costwatch.projects.services import api_key_issue, project_create, user_get_or_create_admin


class Command(BaseCommand):
    help = ("Quickstart set-up used by `make run`: an admin user, a 'Demo' project owned by it, and an ingest "
            "key kept in --key-file (local development only). Prints the ingest key on its last line.")

    def add_arguments(self, parser):
        parser.add_argument("--admin-user", default="admin")
        parser.add_argument("--admin-password", required=True)
        parser.add_argument("--key-file", required=True, help="where the demo ingest key is kept between runs")

    def handle(self, *args, admin_user, admin_password, key_file, **options):
        if len(admin_password) < 8:
            raise CommandError("--admin-password: use at least 8 characters")
        admin, created = user_get_or_create_admin(username=admin_user, password=admin_password)
        if created:
            self.stderr.write(f"created admin user {admin_user!r}")
        project = Project.objects.filter(slug="demo").first()
        if project is None:
            project = project_create(name="Demo", slug="demo", owner=admin)
            self.stderr.write("created project 'Demo' (slug demo)")
        key_path = Path(key_file)
        if not key_path.exists():
            issued = api_key_issue(project=project, scopes=["ingest", "read"], name="demo (make run)",
                                   actor_label="make run")
            key_path.write_text(issued.plaintext)
            key_path.chmod(0o600)
        self.stdout.write(key_path.read_text().strip())
