"""The reconnect backoff: jittered, doubling, capped, and kept across connections that drop at once."""

import random

import pytest

from lampi_load.mqtt.backoff import Backoff


def test_pauses_double_with_jitter_up_to_the_longest():
    backoff = Backoff(2, 30, rng=random.Random(1))
    pauses = [backoff.pause() for _ in range(6)]
    for pause, delay in zip(pauses, [2, 4, 8, 16, 30, 30], strict=True):
        assert delay / 2 <= pause <= delay
    assert len(set(pauses)) == 6  # jittered: no two devices in step


def test_a_connection_that_drops_at_once_keeps_the_doubled_pause():
    backoff = Backoff(2, 30)
    backoff.pause(), backoff.pause()
    backoff.connected(100.0)
    backoff.dropped(101.0)  # kicked a second after connecting: another device holds the id
    assert backoff.pause() >= 4


def test_a_connection_that_held_starts_again_from_the_first_pause():
    backoff = Backoff(2, 30)
    backoff.pause(), backoff.pause(), backoff.pause()
    backoff.connected(100.0)
    backoff.dropped(130.0)
    assert backoff.pause() <= 2


@pytest.mark.parametrize(("outage", "bound"), [(0, 2), (3, 4), (10, 16), (60, 30)])
def test_bound_covers_the_slowest_device_after_an_outage(outage, bound):
    assert Backoff(2, 30).bound(outage) == bound


def test_a_backoff_that_cannot_wait_is_refused():
    with pytest.raises(ValueError, match="0 < first <= longest"):
        Backoff(0, 30)
