"""Hashing the fake accounts' passwords on all cores, with the site's hasher and each account's derived salt."""

import os
import signal
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor

from tqdm import tqdm

from .fake_accounts import fake_password, fake_salt

# Batches queued per worker: enough to keep every core busy, few enough to keep memory bounded.
QUEUED_PER_WORKER = 2


class ProgressBar(tqdm):
    """tqdm without its monitor thread: hashing processes are forked while the bar runs, and a fork copies only
    the forking thread, so no other thread's lock may be held at that moment."""

    monitor_interval = 0


class Hashers:
    """A pool of processes hashing with `hasher`; started on first use, stopped (current batches only) on exit."""

    def __init__(self, hasher, workers: int | None = None):
        self.hasher = hasher
        self.workers = workers or os.cpu_count() or 1
        self.pool: ProcessPoolExecutor | None = None

    def submit(self, ns: list[int]) -> Future:
        """Starts hashing the passwords of accounts `ns`; the future's result is {n: encoded hash}."""
        if self.pool is None:
            self.pool = ProcessPoolExecutor(self.workers, initializer=start_worker, initargs=(self.hasher, os.getpid()))
        return self.pool.submit(hash_passwords, ns)

    def map(self, batches: Iterable[list[int]]) -> Iterator[dict[int, str]]:
        """The hashes of each batch, in order, with at most a few batches per worker queued at any time."""
        queued: deque[Future] = deque()
        for batch in batches:
            queued.append(self.submit(batch))
            if len(queued) >= QUEUED_PER_WORKER * self.workers:
                yield queued.popleft().result()
        while queued:
            yield queued.popleft().result()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        if self.pool is not None:
            # On Ctrl-C, the workers finish their current batch only.
            self.pool.shutdown(cancel_futures=True)


# The hasher of this worker process, set by start_worker().
_hasher = None


def start_worker(hasher, parent: int) -> None:
    """Sets up a hashing process: the site's hasher; Ctrl-C is the parent's to handle; dies with the parent."""
    global _hasher
    _hasher = hasher
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=exit_with_parent, args=(parent,), daemon=True).start()


def exit_with_parent(parent: int) -> None:
    """Ends this worker once its parent is gone."""
    # After a kill -9 of the command, nobody would read the hashes: stop rather than hash on for minutes.
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def hash_passwords(ns: list[int]) -> dict[int, str]:
    """The encoded password hashes of fake accounts `ns`, exactly as the hasher's encode() makes them."""
    return {n: _hasher.encode(fake_password(n), fake_salt(n, _hasher.salt_entropy)) for n in ns}
