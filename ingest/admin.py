"""Django admin for the price catalogue (staff) and a read-only look at features and recomputes.

Prices are added, never edited in place: history is kept by adding a new period, so the
change form only creates rows (through the same service as the API, with its checks, audit
and recompute).
"""

from django import forms
from django.contrib import admin

from .catalogue import price_create, price_delete, price_validate, price_values_normalize
from .models import PRICE_FIELDS, Feature, Price, PriceRecompute

PRICE_FORM_FIELDS = ("project", "model", "provider", "service_tier", "tier", *PRICE_FIELDS, "effective_from", "note")


class PriceAdminForm(forms.ModelForm):
    class Meta:
        model = Price
        fields = PRICE_FORM_FIELDS

    def clean(self):
        data = super().clean()
        if not self.errors:
            values = price_values_normalize({k: v for k, v in data.items() if k != "project"},
                                            project=data.get("project"))
            price_validate(project=data.get("project"), values=values)  # ValidationError -> form errors
        return data


@admin.register(Price)
class PriceAdmin(admin.ModelAdmin):
    list_display = ("model", "provider", "service_tier", "tier", "input_per_mtok", "output_per_mtok",
                    "long_context_threshold", "effective_from", "project", "created_by")
    list_filter = ("service_tier", "tier", "provider", "is_glob", ("project", admin.RelatedOnlyFieldListFilter))
    search_fields = ("model", "provider", "note")
    date_hierarchy = "effective_from"
    ordering = ("model", "provider", "service_tier", "-effective_from")
    form = PriceAdminForm
    fields = PRICE_FORM_FIELDS

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change):
        values = {name: getattr(obj, name) for name in PRICE_FORM_FIELDS if name != "project"}
        obj.pk = price_create(project=obj.project, values=values, actor=request.user).price.pk

    def delete_model(self, request, obj):
        price_delete(price=obj, actor=request.user)  # audited, and the affected events re-priced

    def delete_queryset(self, request, queryset):
        for price in queryset:
            price_delete(price=price, actor=request.user)


@admin.register(Feature)
class FeatureAdmin(admin.ModelAdmin):
    list_display = ("name", "project", "expected_pro_share", "muted", "first_seen_at")
    list_filter = ("muted", ("project", admin.RelatedOnlyFieldListFilter))
    search_fields = ("name",)


@admin.register(PriceRecompute)
class PriceRecomputeAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "state", "since", "events_changed", "created_at", "finished_at")
    list_filter = ("state",)
    readonly_fields = [f.name for f in PriceRecompute._meta.fields]
