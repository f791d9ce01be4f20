import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from lampi.models import Lampi, get_parked_user

from .factories import make_lampi, make_user

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "device_id", ["1E00000000E9", "1e00000000e", "1e00000000e9a", "1e:00:00:00:00", "1e00000000g9", ""]
)
def test_device_id_other_than_12_lowercase_hex_is_rejected(device_id):
    with pytest.raises(ValidationError):
        make_lampi(device_id=device_id)
    assert not Lampi.objects.exists()


def test_database_rejects_bad_device_id_even_from_bulk_create():
    # bulk_create skips save(): the check constraint is the last line of defence.
    with pytest.raises(IntegrityError):
        Lampi.objects.bulk_create([Lampi(device_id="NOT-HEX", user=get_parked_user())])


def test_new_device_defaults():
    lampi = make_lampi()
    assert lampi.name == "My LAMPI"
    assert lampi.is_parked
    assert len(lampi.association_code) == 32
    assert lampi.created_at is not None
    assert lampi.get_absolute_url() == "/lampi/device/1e00000000e9"


def test_association_codes_are_unique_and_random():
    codes = {make_lampi(device_id=f"{n:012x}").association_code for n in range(50)}
    assert len(codes) == 50


def test_parked_user_cannot_sign_in():
    parked = get_parked_user()
    assert not parked.is_active
    assert not parked.has_usable_password()


def test_associate_moves_device_to_user():
    lampi = make_lampi()
    owner = make_user()
    lampi.associate(owner)
    lampi.refresh_from_db()
    assert lampi.user == owner
    assert not lampi.is_parked
