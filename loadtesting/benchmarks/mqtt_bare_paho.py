"""The ceiling: paho-mqtt alone (no Locust, no gevent), N clients on one selectors loop, the same flood.

    python loadtesting/benchmarks/mqtt_bare_paho.py --port 1883 --qos 1 --clients 100 --seconds 20
Like the Locust floods, each pass of the loop tops every client up to `--window` unacknowledged messages;
prints acknowledged messages/s, CPU µs per message and the CPU share it got, as JSON.
"""

import argparse
import json
import selectors
import sys
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from lampi_load.mqtt.model import lamp_state  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--qos", type=int, default=1)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--window", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    payload = lamp_state("lamp_ui")
    selector = selectors.DefaultSelector()
    acked = 0
    measuring = False
    pending: dict[mqtt.Client, int] = {}

    def on_publish(client, userdata, mid, reason_code, properties):
        nonlocal acked
        acked += measuring
        pending[client] -= 1

    clients = []
    for _ in range(args.clients):
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bare-{uuid.uuid4().hex[:12]}")
        client.user_data_set("bench/lamp/changed")
        client.on_publish = on_publish
        client.on_socket_open = lambda c, u, sock: selector.register(sock, selectors.EVENT_READ, c)
        client.on_socket_close = lambda c, u, sock: selector.unregister(sock)
        client.on_socket_register_write = lambda c, u, sock: selector.modify(sock, 3, c)
        client.on_socket_unregister_write = lambda c, u, sock: selector.modify(sock, selectors.EVENT_READ, c)
        client.connect("127.0.0.1", args.port)
        clients.append(client)
        pending[client] = 0

    def run(seconds: float) -> None:
        end = time.monotonic() + seconds
        misc = time.monotonic() + 1
        while time.monotonic() < end:
            for key, mask in selector.select(timeout=0.1):
                if mask & selectors.EVENT_READ:
                    key.data.loop_read()
                if mask & selectors.EVENT_WRITE and key.data.socket():
                    key.data.loop_write()
            if measuring is not None:
                for client in clients:
                    for _ in range(args.window - pending[client]):
                        pending[client] += 1
                        client.publish(client._userdata, payload, args.qos)
            if time.monotonic() > misc:
                misc += 1
                for client in clients:
                    client.loop_misc()

    measuring = None
    run(1)  # CONNACKs
    measuring = False
    run(2)  # warm up
    measuring, start, cpu = True, time.monotonic(), time.process_time()
    run(args.seconds)
    elapsed, cpu = time.monotonic() - start, time.process_time() - cpu
    print(json.dumps({"rate": acked / elapsed, "cpu_us": cpu / acked * 1e6, "cpu_share": cpu / elapsed}))


if __name__ == "__main__":
    main()
