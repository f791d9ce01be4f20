from django.urls import path

from . import views

app_name = "lampi"

urlpatterns = [
    path("", views.DeviceListView.as_view(), name="index"),
    path("add/", views.AddLampiView.as_view(), name="add"),
    path("device/<str:device_id>", views.DeviceControlView.as_view(), name="device"),
]
