from django.apps import AppConfig


class LampiConfig(AppConfig):
    """The LAMPI app: devices, their owners, and the bridge to the MQTT broker."""

    name = "lampi"
    verbose_name = "LAMPI"
