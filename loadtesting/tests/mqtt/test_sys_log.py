"""The $SYS logger and its summary, against the fixture's broker (sys_interval 1)."""

import json
import threading

import paho.mqtt.client as mqtt

from lampi_load.mqtt.broker import BrokerAddress
from lampi_load.mqtt.sys_log import main, markdown, summarise


def publish_for(mosquitto, seconds: float) -> threading.Thread:
    """A client that publishes 50 messages a second for `seconds`, so the counters move."""

    def run():
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        client.connect(mosquitto.host, mosquitto.port)
        client.loop_start()
        for n in range(int(seconds * 50)):
            client.publish("devices/1e0000000000/lamp/changed", str(n), qos=1)
            threading.Event().wait(0.02)
        client.disconnect()
        client.loop_stop()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_recording_writes_timestamped_sys_updates_and_summarises_them(mosquitto, tmp_path, capsys):
    out = tmp_path / "sys.jsonl"
    publisher = publish_for(mosquitto, 3)
    assert main(["--host", f"mqtt://{mosquitto.host}:{mosquitto.port}", "--out", str(out), "--duration", "4"]) == 0
    publisher.join()
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {"t", "topic", "value"} <= set(rows[0])
    assert not any(row["topic"].startswith("$SYS/broker/connection/") for row in rows)
    summary = summarise(out)
    assert summary["clients connected"]["max"] >= 2  # the logger and the publisher
    assert summary["messages received/s"]["max"] > 20
    assert summary["bytes received/s"]["mean"] > 0
    assert summary["heap bytes"]["max"] > 0  # Debian builds Mosquitto with memory tracking
    assert summary["publish dropped"] == {"total": 0}
    assert "| messages received/s |" in markdown(summary)
    assert "heap bytes" in capsys.readouterr().out


def test_a_broker_that_is_not_there_is_one_line(capsys):
    port = BrokerAddress.parse("mqtt://127.0.0.1:1").port
    assert main(["--host", f"mqtt://127.0.0.1:{port}", "--out", "/dev/null", "--duration", "1"]) == 2
    assert capsys.readouterr().err.startswith("mqtt_sys: error:")
