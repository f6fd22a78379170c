"""The Settings page shows 200 members and the newest 100 audit entries, says how many there
are, and streams each list whole as CSV."""

import csv
import io

import pytest
from django.contrib.auth import get_user_model

from costwatch.projects.models import AuditLog, Membership

pytestmark = pytest.mark.django_db


def streamed_csv(response) -> list[dict]:
    assert response.streaming and response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_the_settings_page_caps_members_and_the_audit_log_and_streams_both(admin_client, user, project):
    users = get_user_model().objects.bulk_create([get_user_model()(username=f"member-{n:03d}") for n in range(210)])
    Membership.objects.bulk_create([Membership(project=project, user=u, role="viewer") for u in users])
    AuditLog.objects.bulk_create([AuditLog(project=project, actor_label="cli", action="rule.update", target_type="rule",
                                           target_id=str(n), before={"n": n}, after={"n": n + 1}) for n in range(130)])
    members_total = 210 + Membership.objects.filter(project=project).exclude(user__in=users).count()
    audit_total = 130 + AuditLog.objects.filter(project=project).exclude(actor_label="cli").count()
    html = admin_client.get(f"/p/{project.slug}/settings/").content.decode()
    assert f"Showing 200 of {members_total} members, by name; all {members_total} are in the CSV." in html
    assert f"Showing 100 of {audit_total} audit log entries, the newest first" in html
    audit_table = html.split('data-testid="audit-log"')[1].split("</table>")[0]
    assert audit_table.count("<tr>") == 1 + 100

    members = streamed_csv(admin_client.get(f"/p/{project.slug}/settings/", {"format": "csv", "list": "members"}))
    assert len(members) == members_total and {f"member-{n:03d}" for n in range(210)} <= {m["username"] for m in members}
    audit = streamed_csv(admin_client.get(f"/p/{project.slug}/settings/", {"format": "csv", "list": "audit"}))
    mine = sorted((a for a in audit if a["actor"] == "cli"), key=lambda a: int(a["target_id"]))
    assert len(audit) == audit_total and len(mine) == 130
    assert (mine[7]["before"], mine[7]["after"]) == ('{"n": 7}', '{"n": 8}')
