"""Fixtures of loadtesting/tests: the local stack's (testing/stacks.py), for tests that need the real stack."""

from testing.stacks import stack_env, stack_refusing_browsers  # noqa: F401  (registers the fixtures)
