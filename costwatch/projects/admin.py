from django.contrib import admin

from .models import ApiKey, AuditLog, Membership, Project


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "timezone", "huge_cap_tokens", "created_at")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [MembershipInline]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("key_id", "project", "name", "scopes", "created_at", "last_used_at", "revoked_at")
    list_filter = ("project", "revoked_at")
    search_fields = ("key_id", "name")
    readonly_fields = ("key_id", "secret_hash", "created_at", "last_used_at")


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    list_display = ("created_at", "project", "actor_label", "action", "target_type", "target_id")
    list_filter = ("project", "action", "target_type")
    search_fields = ("actor_label", "target_id")
    readonly_fields = [f.name for f in AuditLog._meta.fields]
