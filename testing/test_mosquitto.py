"""The broker fixture itself: both listeners carry messages, and $SYS bridge-state topics pass."""

import paho.mqtt.client as mqtt
import paho.mqtt.subscribe as subscribe


def test_bridge_state_publish_reaches_a_subscriber(mosquitto):
    # A LAMPI's bridge announces itself on $SYS/broker/connection/<id>_broker/state; the cloud broker must
    # accept that publish from a client, or the MQTT daemon never hears of new devices.
    topic = "$SYS/broker/connection/1e00000000e9_broker/state"
    publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="1e00000000e9_broker")
    publisher.connect(mosquitto.host, mosquitto.port)
    publisher.loop_start()
    publisher.publish(topic, "1", qos=1, retain=True).wait_for_publish(5)
    publisher.disconnect()
    publisher.loop_stop()

    message = subscribe.simple(topic, hostname=mosquitto.host, port=mosquitto.port, retained=True)
    assert message.payload == b"1"


def test_websockets_listener_accepts_mqtt(mosquitto):
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, transport="websockets")
    client.ws_set_options(path="/mqtt")
    assert client.connect(mosquitto.host, mosquitto.ws_port) == mqtt.MQTT_ERR_SUCCESS
    client.disconnect()
