from django import forms
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


class ChannelAdminForm(forms.ModelForm):
    """Target and secret are write-only here too (a Slack webhook URL is a credential): the
    form never renders them, and leaving one empty on a change keeps what is stored."""

    target = forms.CharField(required=False, widget=forms.PasswordInput(render_value=False),
                             help_text="Write-only. Email addresses (comma-separated) or the webhook URL; "
                                       "leave empty to keep the current one.")
    secret = forms.CharField(required=False, widget=forms.PasswordInput(render_value=False),
                             help_text="Write-only webhook signing secret; leave empty to keep the current one.")

    class Meta:
        model = Channel
        fields = ["project", "kind", "name", "target", "secret", "rules", "enabled"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial.pop("target", None)
        self.initial.pop("secret", None)

    def clean_target(self):
        target = self.cleaned_data["target"].strip()
        if not target and not self.instance.pk:
            raise forms.ValidationError("Give the email addresses or the webhook URL.")
        return target or self.instance.target

    def clean_secret(self):
        return self.cleaned_data["secret"] or self.instance.secret


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    form = ChannelAdminForm
    list_display = ("name", "kind", "project", "target_display", "enabled", "created_at")
    list_filter = ("project", "kind")
    readonly_fields = ("target_display", "last_test_at", "last_test_error")


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ("id", "channel", "notice", "status", "attempts", "next_attempt_at", "permanent")
    list_filter = ("status", "permanent")


admin.site.register(Notice)
