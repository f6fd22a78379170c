import re
import zoneinfo

from django import forms

from costwatch.projects.models import Membership

DIMENSION_KEY = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")
MAX_DIMENSIONS = 3


class FeatureSettingsForm(forms.Form):
    expected_pro_share = forms.DecimalField(
        required=False, min_value=0, max_value=100, decimal_places=2, label="Expected Pro share (%)",
        help_text="Replaces the pro_default threshold for this feature. Empty = project default.")
    muted = forms.BooleanField(required=False, label="Mute (no alerts, still shown)")

    def cleaned_share(self) -> float | None:
        value = self.cleaned_data["expected_pro_share"]
        return None if value is None else float(value) / 100


class WhatIfForm(forms.Form):
    pro_share = forms.DecimalField(min_value=0, max_value=100, decimal_places=2, required=False,
                                   label="Pro share (%)")
    cap = forms.IntegerField(min_value=1, max_value=1_000_000, required=False, label="Output cap (tokens)")


class ProjectSettingsForm(forms.Form):
    timezone = forms.ChoiceField(choices=[(tz, tz) for tz in sorted(zoneinfo.available_timezones())])
    dimensions = forms.CharField(
        required=False, max_length=320, label="Dimensions",
        help_text="Up to 3 attribute keys, comma separated (e.g. customer, plan): each gets a daily cost breakdown.")
    ingest_rate_limit = forms.IntegerField(required=False, min_value=0, label="Ingest rate limit (events/s)",
                                           help_text="Empty = the server default; 0 = off.")
    huge_cap_tokens = forms.IntegerField(min_value=1, max_value=10_000_000, label="Huge cap (tokens)",
                                         help_text="A max-output cap at or above this counts as no cap.")

    def clean_dimensions(self) -> list[str]:
        keys = [k.strip() for k in self.cleaned_data["dimensions"].split(",") if k.strip()]
        keys = list(dict.fromkeys(keys))
        if len(keys) > MAX_DIMENSIONS:
            raise forms.ValidationError(f"At most {MAX_DIMENSIONS} dimensions (got {len(keys)}).")
        bad = [k for k in keys if not DIMENSION_KEY.match(k)]
        if bad:
            raise forms.ValidationError(f"Not an attribute key: {', '.join(bad)} (letters, digits, _ . - only).")
        return keys


class MemberForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Membership.ROLES)
