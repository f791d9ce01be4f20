"""Free loopback ports for servers that tests start."""

import random
import socket
import time

# Ports handed out by this process: two servers of one test must not get the same one.
GIVEN: set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on, below Linux's ephemeral range (32768+): one the kernel picked would be free to
    give an outgoing connection's source port in the moment before the server binds it (a load test next door
    opens thousands)."""
    while True:
        port = random.randrange(20000, 32768)
        if port in GIVEN:
            continue
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
        GIVEN.add(port)
        return port


def wait_for_port(host: str, port: int, timeout: float = 10.0) -> None:
    """Returns once something accepts TCP connections on host:port; raises TimeoutError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:.0f} s") from None
            time.sleep(0.05)
