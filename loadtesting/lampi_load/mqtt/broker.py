"""Where the broker listens, from the URL a user gives (`--host`), and where device connections come from."""

import ipaddress
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


def brokers(url: str) -> list[BrokerAddress]:
    """Several brokers as one comma-separated `--host` (`mqtt://127.0.0.1:1883,mqtt://127.0.0.1:1884`): past one
    Mosquitto's open-file limit, each generator process takes one of them in turn. Raises ValueError (one line)."""
    return [BrokerAddress.parse(part) for part in (url or "").split(",")]


# One source address reaches one broker port through the ephemeral port range (about 28,000 ports): past that,
# connections need more source addresses. Loopback has all of 127.0.0.0/8.
AUTO_LOOPBACK_SOURCES = 16


def source_addresses(spec: str, broker_host: str) -> list[str]:
    """The local addresses device connections are spread over, from `--mqtt-source-addresses`.

    `auto`: for a broker on 127.x.x.x, 127.0.1.1 to 127.0.1.16 (16 x 28,000 ports); elsewhere the kernel's choice
    (an empty list). `none`: the kernel's choice. Else a comma list of addresses or ranges (`127.0.1.1-127.0.1.8`).
    Raises ValueError with one line on anything else.
    """
    spec = spec.strip()
    if spec == "none":
        return []
    if spec == "auto":
        try:
            loopback = ipaddress.ip_address(broker_host).version == 4 and ipaddress.ip_address(broker_host).is_loopback
        except ValueError:
            loopback = broker_host == "localhost"
        return [f"127.0.1.{n}" for n in range(1, AUTO_LOOPBACK_SOURCES + 1)] if loopback else []
    addresses = []
    try:
        for part in spec.split(","):
            first, _, last = part.strip().partition("-")
            low = ipaddress.ip_address(first)
            high = ipaddress.ip_address(last) if last else low
            if high < low or int(high) - int(low) >= 65_536:
                raise ValueError
            addresses += [str(ipaddress.ip_address(n)) for n in range(int(low), int(high) + 1)]
    except (ValueError, TypeError):
        raise ValueError(
            f"bad --mqtt-source-addresses {spec!r}: use auto, none, or addresses and ranges such as "
            "127.0.1.1-127.0.1.8,127.0.2.1"
        ) from None
    return addresses
