"""Readiness checks: a port is free, a page answers 200, an MQTT broker sends its CONNACK."""

import socket
import time
import urllib.error
import urllib.request

import paho.mqtt.client as mqtt


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True if a server could listen on host:port now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As NGINX, uWSGI and Mosquitto do: connections left in TIME_WAIT by a load test must not count as
        # "taken", only another listener.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def http_ok(url: str) -> bool:
    """True if `url` answers 200 now."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def mqtt_connack(host: str, port: int, transport: str = "tcp", timeout: float = 5) -> bool:
    """True if an MQTT connect (over TCP, or WebSockets at /mqtt) gets a successful CONNACK within `timeout` s."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, transport=transport)
    if transport == "websockets":
        client.ws_set_options(path="/mqtt")
    try:
        client.connect(host, port, keepalive=10)
        deadline = time.monotonic() + timeout
        while not client.is_connected() and time.monotonic() < deadline:
            client.loop(timeout=0.1)
        connected = client.is_connected()
        client.disconnect()
        return connected
    except OSError:
        return False
