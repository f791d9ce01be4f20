"""Claiming a parked device by its association code, and telling the device over the real broker."""

import json

import pytest

from lampi.models import Lampi
from testing.mqtt_recorder import MqttRecorder

from .factories import make_lampi, make_user

pytestmark = pytest.mark.django_db

TOPIC = "devices/1e00000000e9/lamp/associated"


@pytest.fixture
def parked():
    return make_lampi("1e00000000e9")


@pytest.fixture
def alice(client):
    user = make_user("alice")
    client.force_login(user)
    return user


def test_code_prefix_claims_device_and_announces_it(client, mqtt_settings, mosquitto, parked, alice):
    with MqttRecorder(mosquitto.host, mosquitto.port, [TOPIC]) as recorder:
        response = client.post("/lampi/add/", {"association_code": parked.association_code[:6].upper()})
        message = recorder.wait_for(lambda m: m.topic == TOPIC)
    assert response.status_code == 302
    assert response["Location"] == "/lampi/"
    parked.refresh_from_db()
    assert parked.user == alice
    assert json.loads(message.payload) == {"associated": True}
    assert message.qos == 2
    # Retained, so a device that connects later still learns it: a new subscriber gets it too.
    with MqttRecorder(mosquitto.host, mosquitto.port, [TOPIC]) as late:
        assert late.wait_for(lambda m: m.retain).payload == message.payload


@pytest.mark.parametrize("code", ["zzzzzz", "abc"])
def test_unknown_or_short_code_is_a_form_error_and_changes_nothing(client, parked, alice, code):
    response = client.post("/lampi/add/", {"association_code": code})
    assert response.status_code == 200
    assert response.context["form"].errors["association_code"]
    parked.refresh_from_db()
    assert parked.is_parked


def test_already_used_code_is_a_form_error_and_changes_nothing(client, alice):
    bob = make_user("bob")
    owned = make_lampi("1e00000000ea", user=bob)
    response = client.post("/lampi/add/", {"association_code": owned.association_code[:6]})
    assert response.status_code == 200
    assert "already used" in str(response.context["form"].errors["association_code"])
    owned.refresh_from_db()
    assert owned.user == bob


def test_ambiguous_prefix_asks_for_more_characters(client, alice):
    make_lampi("1e0000000001", association_code="abcdef" + "0" * 26)
    make_lampi("1e0000000002", association_code="abcdef" + "1" * 26)
    response = client.post("/lampi/add/", {"association_code": "abcdef"})
    assert "more than one" in str(response.context["form"].errors["association_code"])
    response = client.post("/lampi/add/", {"association_code": "abcdef1"})
    assert response.status_code == 302
    assert Lampi.objects.get(pk="1e0000000002").user == alice


def test_broker_down_still_associates_and_warns(client, settings, parked, alice):
    from testing.ports import free_port

    settings.MQTT_BROKER_HOST, settings.MQTT_BROKER_PORT = "127.0.0.1", free_port()
    response = client.post("/lampi/add/", {"association_code": parked.association_code[:6]}, follow=True)
    parked.refresh_from_db()
    assert parked.user == alice
    assert "broker did not answer" in response.content.decode()
