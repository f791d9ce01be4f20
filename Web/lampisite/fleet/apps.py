from django.apps import AppConfig


class FleetConfig(AppConfig):
    """Sensor fleets: the MQTT ingest sink and the measures it stores."""

    name = "fleet"
    verbose_name = "Sensor fleet"
