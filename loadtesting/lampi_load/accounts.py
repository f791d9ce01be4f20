"""The fake accounts `./manage.py loadtestingdata` seeds: user n owns one device, password = name reversed.

The seeding command in the site defines the same convention; a test checks the two agree.
"""

DEVICE_ID_BASE = 0x1E0000000000


def fake_username(n: int) -> str:
    return f"user_{n:06d}"


def fake_password(n: int) -> str:
    return fake_username(n)[::-1]


def fake_device_id(n: int) -> str:
    return f"{DEVICE_ID_BASE + n:012x}"
