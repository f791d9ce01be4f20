"""What a sensor fleet sends: one row per measure, and one per message the sink refused to store."""

from django.db import models


class Measurement(models.Model):
    """One measure of one message. Times are Unix seconds, to keep the sink's hot path cheap."""

    device = models.CharField(max_length=64)
    seq = models.PositiveIntegerField(help_text="The message's sequence number on its device, from 0.")
    name = models.CharField(max_length=40)
    value = models.FloatField()
    sent_at = models.FloatField(help_text="When the device published the message (its clock, Unix s).")
    received_at = models.FloatField(help_text="When the sink received the message (Unix s).")
    stored_at = models.FloatField(help_text="When the sink began writing the batch holding it (Unix s).")

    class Meta:
        ordering = ["device", "seq", "name"]
        constraints = [
            # A QoS 1 message can arrive twice: the second copy must not be stored twice.
            models.UniqueConstraint(fields=["device", "seq", "name"], name="fleet_measure_once"),
        ]

    def __str__(self):
        return f"{self.device} #{self.seq} {self.name}={self.value}"


class Rejected(models.Model):
    """A message the sink received but did not store, and why."""

    DUPLICATE = "duplicate"
    MALFORMED = "malformed"
    REASONS = [(DUPLICATE, "already stored"), (MALFORMED, "not a fleet message")]

    reason = models.CharField(max_length=10, choices=REASONS)
    topic = models.CharField(max_length=200)
    device = models.CharField(max_length=64, blank=True)
    seq = models.PositiveIntegerField(null=True, blank=True)
    detail = models.CharField(max_length=200, blank=True, help_text="The error, or the start of the payload.")
    received_at = models.FloatField(help_text="When the sink received the message (Unix s).")

    class Meta:
        ordering = ["received_at"]
        verbose_name_plural = "rejected"

    def __str__(self):
        return f"{self.reason}: {self.topic} {self.detail[:40]}"
