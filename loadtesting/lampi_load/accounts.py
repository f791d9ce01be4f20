"""The fake accounts `./manage.py loadtestingdata` seeds: user n owns one device, password = name reversed.

The seeding command in the site defines the same convention; a test checks the two agree.
"""

import re

DEVICE_ID_BASE = 0x1E0000000000


def fake_username(n: int) -> str:
    return f"user_{n:06d}"


def fake_password(n: int) -> str:
    return fake_username(n)[::-1]


def fake_device_id(n: int) -> str:
    return f"{DEVICE_ID_BASE + n:012x}"


# The hidden field Django's login form carries; its value goes back with the POST.
CSRF_TOKEN_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def login_form(n: int, page: str) -> dict[str, str] | None:
    """The form that signs fake user n in, with the CSRF token of the login `page`; None when it has none."""
    token = CSRF_TOKEN_RE.search(page or "")
    if not token:
        return None
    return {
        "username": fake_username(n),
        "password": fake_password(n),
        "csrfmiddlewaretoken": token[1],
        "next": "/lampi/",
    }
