"""Helpers the test suites share: real servers on free loopback ports."""
