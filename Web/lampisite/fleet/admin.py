from django.contrib import admin

from .models import Measurement, Rejected


@admin.register(Measurement)
class MeasurementAdmin(admin.ModelAdmin):
    """Measures are evidence of what arrived: readable, never edited by hand."""

    list_display = ["device", "seq", "name", "value", "sent_at", "stored_at"]
    list_filter = ["name"]
    search_fields = ["device"]

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Rejected)
class RejectedAdmin(admin.ModelAdmin):
    """Messages the sink refused, and why."""

    list_display = ["reason", "topic", "device", "seq", "detail", "received_at"]
    list_filter = ["reason"]

    def has_change_permission(self, request, obj=None):
        return False
