"""Fixtures every test suite in the repository can use."""

import pytest

from testing.mosquitto import Mosquitto
from testing.site_database import SiteDatabase


@pytest.fixture
def mosquitto(tmp_path):
    """A real Mosquitto broker for one test, on free loopback ports (TCP and WebSockets)."""
    with Mosquitto(tmp_path / "mosquitto") as broker:
        yield broker


@pytest.fixture
def mqtt_settings(settings, mosquitto):
    """Points the site's MQTT settings at the test's broker."""
    settings.MQTT_BROKER_HOST = mosquitto.host
    settings.MQTT_BROKER_PORT = mosquitto.port
    settings.MQTT_WEBSOCKETS_URL = mosquitto.ws_url
    settings.MQTT_WEBSOCKETS_PORT = mosquitto.ws_port
    return settings


@pytest.fixture
def site_database(tmp_path):
    """An empty database of the profile's engine for the site's processes the test starts; dropped after."""
    database = SiteDatabase.create(tmp_path)
    yield database
    database.drop()
