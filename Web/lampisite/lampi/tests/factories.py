"""Small builders for test data, so each test states only what matters to it."""

from django.contrib.auth import get_user_model

from lampi.models import Lampi, get_parked_user


def make_user(username: str = "alice", password: str = "correct horse battery"):
    return get_user_model().objects.create_user(username=username, password=password)


def make_lampi(device_id: str = "1e00000000e9", user=None, **fields) -> Lampi:
    return Lampi.objects.create(device_id=device_id, user=user or get_parked_user(), **fields)
