"""A LAMPI device and the user it belongs to."""

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.validators import RegexValidator
from django.db import models
from django.urls import reverse

# A device id is the lamp's Ethernet MAC address: 12 lowercase hex digits, no separators.
DEVICE_ID_PATTERN = r"^[0-9a-f]{12}$"
# Unassociated devices belong to this user until someone enters their association code.
PARKED_USERNAME = "parked_device_user"
# Characters of the association code a person types to claim a device.
ASSOCIATION_PREFIX_LENGTH = 6

device_id_validator = RegexValidator(DEVICE_ID_PATTERN, "A device id is exactly 12 lowercase hex digits.")


def generate_association_code() -> str:
    """A random code; its first characters are what the lamp's screen shows."""
    return secrets.token_hex(16)


def get_parked_user():
    """The owner of devices that nobody has claimed yet; it cannot sign in."""
    user, created = get_user_model().objects.get_or_create(username=PARKED_USERNAME, defaults={"is_active": False})
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


class Lampi(models.Model):
    """One lamp, identified by its device id, owned by one user."""

    device_id = models.CharField(primary_key=True, max_length=12, validators=[device_id_validator])
    name = models.CharField(max_length=50, default="My LAMPI")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lampis")
    association_code = models.CharField(max_length=32, unique=True, default=generate_association_code)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "device_id"]
        verbose_name = "LAMPI"
        constraints = [
            # Enforced by the database too, so no path (bulk_create, raw admin edits) stores a bad id.
            models.CheckConstraint(
                condition=models.Q(device_id__regex=DEVICE_ID_PATTERN), name="lampi_device_id_12_lower_hex"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.device_id})"

    def save(self, *args, **kwargs):
        # save() skips model validation; checking the fields here gives a clear error before the database's.
        self.clean_fields(exclude=["user", "association_code"])
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse("lampi:device", kwargs={"device_id": self.device_id})

    @property
    def is_parked(self) -> bool:
        """True while no person has claimed the device."""
        return self.user.username == PARKED_USERNAME

    def associate(self, user) -> None:
        """Gives the device to `user`; the caller announces it over MQTT."""
        self.user = user
        self.save(update_fields=["user"])
