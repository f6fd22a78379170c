"""`manage.py evaluate_rules [--project SLUG|NAME] [--now ISO]`: refresh rollups, run one rule cycle, print verdicts."""

import json

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from budgets.services import deliveries_send_due, rules_evaluate
from costwatch.cli import parse_when, project_argument, projects_named
from costwatch.metrics.services import rollups_refresh_dirty


class Command(BaseCommand):
    help = ("Refresh the rollups, run one rule cycle synchronously (opening, reminding and resolving alerts) "
            "and print each verdict with the numbers behind it (--firing: only those that fired). Deliveries are left to the worker unless "
            "--send is given.")

    def add_arguments(self, parser):
        project_argument(parser)
        parser.add_argument("--now", help="Evaluate as if it were this time (ISO 8601; default: now).")
        parser.add_argument("--firing", action="store_true", help="Print only the verdicts that fired.")
        parser.add_argument("--send", action="store_true", help="Send due deliveries after the cycle.")

    def handle(self, *args, **options):
        now = parse_when(options["now"], option="--now", default=timezone.now())
        projects = projects_named(options["project"])
        if not projects:
            raise CommandError("no projects yet: create one with `manage.py create_project NAME`")
        for project in projects:
            refreshed = rollups_refresh_dirty(project=project)
            evaluations = rules_evaluate(project=project, now=now)
            fired = [e for e in evaluations if e.verdict.fired]
            self.stdout.write(f"{project.slug}: rollups refreshed ({refreshed}), {len(evaluations)} verdicts, "
                              f"{len(fired)} firing at {now.isoformat()}")
            for evaluation in evaluations:
                if evaluation.verdict.fired or not options["firing"]:
                    self.stdout.write(self.line(evaluation))
        if options["send"]:
            self.stdout.write(f"deliveries sent: {deliveries_send_due(now=now)}")

    @staticmethod
    def line(evaluation) -> str:
        verdict = evaluation.verdict
        scope = ",".join(f"{k}={v}" for k, v in evaluation.scope.items()) or "project"
        mark = "FIRE" if verdict.fired else "ok  "
        level = f" level={verdict.level}%" if verdict.level else ""
        return (f"  {mark} {evaluation.kind:<17} rule={evaluation.rule.pk} {scope}{level}: {verdict.message}\n"
                f"       numbers {json.dumps(verdict.numbers, sort_keys=True, default=str)}")
