"""Fixtures of testing/: the local stack (testing/stacks.py)."""

from testing.stacks import stack, stack_env, stack_refusing_browsers  # noqa: F401  (registers the fixtures)
