from django.conf import settings
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.db import transaction
from django.shortcuts import get_object_or_404
from django.urls import reverse_lazy
from django.views.generic import DetailView, FormView, ListView

from .forms import AddLampiForm
from .models import Lampi
from .mqtt import associated_topic, association_payload, publish_once


class DeviceListView(LoginRequiredMixin, ListView):
    """The signed-in user's devices."""

    template_name = "lampi/index.html"
    context_object_name = "lampis"

    def get_queryset(self):
        return Lampi.objects.filter(user=self.request.user)


class DeviceControlView(LoginRequiredMixin, DetailView):
    """The live control page of one device; anyone but its owner gets a 404."""

    template_name = "lampi/device.html"
    context_object_name = "lampi"

    def get_object(self, queryset=None):
        return get_object_or_404(Lampi, device_id=self.kwargs["device_id"], user=self.request.user)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["mqtt_config"] = {
            "deviceId": self.object.device_id,
            "websocketsUrl": settings.MQTT_WEBSOCKETS_URL,
            "websocketsPort": settings.MQTT_WEBSOCKETS_PORT,
        }
        return context


class AddLampiView(LoginRequiredMixin, FormView):
    """Associates a parked device with the signed-in user, then tells the device over MQTT."""

    template_name = "lampi/add.html"
    form_class = AddLampiForm
    success_url = reverse_lazy("lampi:index")

    def form_valid(self, form):
        with transaction.atomic():
            # Locked and re-checked: of two people typing the same code at once, exactly one gets the lamp.
            lampi = Lampi.objects.select_for_update().filter(pk=form.device.pk, user=form.device.user).first()
            if lampi is None:
                form.add_error("association_code", "That LAMPI was claimed a moment ago.")
                return self.form_invalid(form)
            lampi.associate(self.request.user)
        if not publish_once(associated_topic(lampi.device_id), association_payload(lampi)):
            messages.warning(
                self.request,
                "Your LAMPI is yours, but the broker did not answer: it will learn so when it next connects.",
            )
        messages.success(self.request, f"{lampi.name} ({lampi.device_id}) is now yours.")
        return super().form_valid(form)
