"""Who may see which page."""

import pytest

from .factories import make_lampi, make_user

pytestmark = pytest.mark.django_db

PROTECTED = ["/lampi/", "/lampi/add/", "/lampi/device/1e00000000e9"]


@pytest.fixture
def owner():
    return make_user("alice")


@pytest.fixture
def lampi(owner):
    return make_lampi("1e00000000e9", user=owner, name="Desk lamp")


@pytest.mark.parametrize("path", PROTECTED)
def test_anonymous_is_sent_to_login_with_next(client, lampi, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={path}"


def test_root_redirects_to_device_list(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/lampi/"


def test_login_page_renders_a_form_with_csrf_token(client):
    response = client.get("/login/")
    assert response.status_code == 200
    assert b'name="csrfmiddlewaretoken"' in response.content


def test_device_list_shows_only_own_devices(client, owner, lampi):
    make_lampi("1e00000000ea", user=make_user("bob"), name="Bob's lamp")
    client.force_login(owner)
    response = client.get("/lampi/")
    assert response.status_code == 200
    assert list(response.context["lampis"]) == [lampi]
    assert b"Desk lamp" in response.content
    assert b"Bob" not in response.content


def test_owner_sees_control_page(client, owner, lampi):
    client.force_login(owner)
    response = client.get("/lampi/device/1e00000000e9")
    assert response.status_code == 200
    assert response.context["lampi"] == lampi
    assert response.context["mqtt_config"]["deviceId"] == "1e00000000e9"


def test_other_users_device_is_404(client, lampi):
    client.force_login(make_user("mallory"))
    assert client.get("/lampi/device/1e00000000e9").status_code == 404


@pytest.mark.parametrize("device_id", ["1e00000000ff", "not-a-device"])
def test_unknown_device_is_404(client, owner, device_id):
    client.force_login(owner)
    assert client.get(f"/lampi/device/{device_id}").status_code == 404


def test_parked_device_is_404_for_everyone(client, owner):
    make_lampi("1e00000000ab")
    client.force_login(owner)
    assert client.get("/lampi/device/1e00000000ab").status_code == 404


def test_logout_needs_post_and_signs_out(client, owner):
    client.force_login(owner)
    assert client.get("/logout/").status_code == 405
    assert client.post("/logout/").status_code == 302
    assert client.get("/lampi/").status_code == 302


def test_csrf_protection_is_on(owner):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    response = strict.post("/login/", {"username": "alice", "password": "correct horse battery"})
    assert response.status_code == 403
