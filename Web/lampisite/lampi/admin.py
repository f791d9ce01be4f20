from django.contrib import admin

from .models import Lampi


@admin.register(Lampi)
class LampiAdmin(admin.ModelAdmin):
    list_display = ["device_id", "name", "user", "created_at"]
    search_fields = ["device_id", "name", "user__username"]
    raw_id_fields = ["user"]
