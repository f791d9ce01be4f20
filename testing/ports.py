"""Free loopback ports for servers that tests start."""

import random
import socket
import time


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def server_port(host: str = "127.0.0.1") -> int:
    """A free port below Linux's ephemeral range (32768+): no outgoing connection takes it in the seconds before
    the server it is for starts (configuration is rendered first)."""
    while True:
        port = random.randrange(20000, 32768)
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
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
