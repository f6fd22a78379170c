"""The Prices page form: the API's price fields plus the scope (project override or global)."""

from django import forms

from .models import PRICE_TIERS, SERVICE_TIERS

MONEY = {"max_digits": 14, "decimal_places": 6, "min_value": 0, "required": False}


class PriceForm(forms.Form):
    scope = forms.ChoiceField(choices=[("override", "This project (override)"), ("global", "Global catalogue")],
                              initial="override")
    model = forms.CharField(max_length=200, help_text="Exact id or a glob such as gemini-*-flash-lite*")
    provider = forms.CharField(max_length=50, required=False)
    service_tier = forms.ChoiceField(choices=SERVICE_TIERS, initial="standard")
    tier = forms.ChoiceField(choices=[("", "(from catalogue)"), *PRICE_TIERS], required=False)
    input_per_mtok = forms.DecimalField(**MONEY)
    cached_input_per_mtok = forms.DecimalField(**MONEY)
    cache_write_input_per_mtok = forms.DecimalField(**MONEY)
    output_per_mtok = forms.DecimalField(**MONEY)
    reasoning_output_per_mtok = forms.DecimalField(**MONEY)
    long_context_threshold = forms.IntegerField(min_value=1, required=False)
    long_context_input_per_mtok = forms.DecimalField(**MONEY)
    long_context_cached_input_per_mtok = forms.DecimalField(**MONEY)
    long_context_output_per_mtok = forms.DecimalField(**MONEY)
    effective_from = forms.DateTimeField(required=False, help_text="UTC, e.g. 2026-11-01 00:00; empty = now, or 2000-01-01 for a model new here "
                                               "(so its stored calls get their cost)")

    def __init__(self, *args, can_edit_global=False, can_edit_override=True, **kwargs):
        super().__init__(*args, **kwargs)
        allowed = [c for c in self.fields["scope"].choices
                   if (c[0] == "global" and can_edit_global) or (c[0] == "override" and can_edit_override)]
        self.fields["scope"].choices = allowed

    def price_values(self) -> dict:
        return {k: v for k, v in self.cleaned_data.items() if k != "scope" and v not in (None, "")} | {
            "model": self.cleaned_data["model"].strip()}
