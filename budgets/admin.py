from django.contrib import admin

from .models import Alert, Channel, Delivery, Notice, Rule


@admin.register(Rule)
class RuleAdmin(admin.ModelAdmin):
    list_display = ("kind", "project", "feature", "environment", "enabled", "is_default", "cooldown_hours")
    list_filter = ("project", "kind", "enabled")


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ("kind", "project", "key", "state", "level", "opened_at", "resolved_at")
    list_filter = ("project", "kind", "state")
    readonly_fields = ("opened_at", "last_fired_at", "last_notified_at", "clear_since")


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "project", "enabled", "created_at")
    list_filter = ("project", "kind")
    exclude = ("secret",)


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ("id", "channel", "notice", "status", "attempts", "next_attempt_at", "permanent")
    list_filter = ("status", "permanent")


admin.site.register(Notice)
