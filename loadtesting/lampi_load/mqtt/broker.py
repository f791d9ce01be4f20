"""Where the broker listens, from the URL a user gives (`--host`)."""

from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class BrokerAddress:
    """Where the broker listens: `mqtt://HOST:PORT`, `ws://HOST:PORT/path` or plain `HOST[:PORT]`."""

    transport: str
    host: str
    port: int
    path: str = "/mqtt"

    @classmethod
    def parse(cls, url: str) -> "BrokerAddress":
        url = (url or "").strip()
        if not url:
            raise ValueError("no broker address: pass --host mqtt://HOST:PORT (or ws://HOST:PORT/path)")
        parts = urlsplit(url if "://" in url else f"mqtt://{url}")
        defaults = {"mqtt": 1883, "tcp": 1883, "ws": 80}
        try:
            port = parts.port
        except ValueError:
            port = -1
        if parts.scheme not in defaults or not parts.hostname or port == -1 or (parts.path and parts.scheme != "ws"):
            raise ValueError(f"bad broker address {url!r}: use mqtt://HOST:PORT, ws://HOST:PORT/path or HOST[:PORT]")
        transport = "websockets" if parts.scheme == "ws" else "tcp"
        return cls(transport, parts.hostname, port or defaults[parts.scheme], parts.path or "/mqtt")
