"""The shared event loop's pieces that need no Locust: broker addresses, the model's arithmetic."""

import pytest

from lampi_load.mqtt_fleet import BrokerAddress
from lampi_load.mqtt_model import PROFILES, lamp_state


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mqtt://127.0.0.1:1884", BrokerAddress("tcp", "127.0.0.1", 1884)),
        ("mqtt://broker.example", BrokerAddress("tcp", "broker.example", 1883)),
        ("127.0.0.1", BrokerAddress("tcp", "127.0.0.1", 1883)),
        ("localhost:50001", BrokerAddress("tcp", "localhost", 50001)),
        ("ws://127.0.0.1:9001/mqtt", BrokerAddress("websockets", "127.0.0.1", 9001, "/mqtt")),
        ("ws://127.0.0.1:9001", BrokerAddress("websockets", "127.0.0.1", 9001, "/mqtt")),
        ("ws://h:50002/ws", BrokerAddress("websockets", "h", 50002, "/ws")),
    ],
)
def test_broker_addresses_parse(url, expected):
    assert BrokerAddress.parse(url) == expected


@pytest.mark.parametrize(
    "url", ["", "http://127.0.0.1:8080", "mqtt://127.0.0.1:port", "mqtt://:1883", "mqtt://h:1883/x", "h:99999"]
)
def test_bad_broker_addresses_say_what_to_use(url):
    with pytest.raises(ValueError, match="mqtt://HOST:PORT"):
        BrokerAddress.parse(url)


def test_profiles_rates_match_the_model_document():
    assert PROFILES["normal"].rate() == pytest.approx(13 / 300.8)
    assert PROFILES["worst"].rate() == pytest.approx(15)


def test_lamp_state_is_about_the_size_the_model_says():
    assert 120 <= len(lamp_state("lamp_bt_peripheral")) <= 170
