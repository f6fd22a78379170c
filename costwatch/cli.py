"""Small helpers shared by the management commands of every app: the `--project` option and ISO times."""

from datetime import UTC, datetime

from django.core.management.base import CommandError

from costwatch.projects.models import Project


def parse_when(value: str | None, *, option: str, default: datetime | None = None) -> datetime | None:
    """An ISO date or datetime; UTC when it has no offset; `default` when the option was not given.
    Bad input is a CommandError naming the option."""
    if not value:
        return default
    try:
        when = datetime.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"{option}: {value!r} is not an ISO date or datetime (e.g. 2026-11-01T00:00:00Z)") from exc
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def project_argument(parser, *, required: bool = False, default: str | None = None, note: str = "") -> None:
    """`--project`, a slug or a name everywhere: required, with a default, or else "every project"."""
    if required:
        scope = ""
    elif default is not None:
        scope = f" [{default}]"
    else:
        scope = " (default: every project)"
    parser.add_argument("--project", required=required, default=default,
                        help=f"Project slug or name{scope}{note}")


def project_find(value: str) -> Project | None:
    """The project whose slug, or else whose name, is `value`."""
    return Project.objects.filter(slug=value).first() or Project.objects.filter(name=value).first()


def project_named(value: str) -> Project:
    """The project `--project` names; a CommandError listing the known slugs when there is none."""
    project = project_find(value)
    if project is None:
        known = ", ".join(Project.objects.values_list("slug", flat=True)[:20]) or "none yet"
        raise CommandError(f"--project: no project with slug or name {value!r} (known: {known})")
    return project


def projects_named(value: str | None) -> list[Project]:
    """The project `--project` names, or every project when it was not given."""
    return [project_named(value)] if value else list(Project.objects.all())
