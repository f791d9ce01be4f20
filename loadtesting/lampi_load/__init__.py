"""Shared pieces of the LAMPI load tests: the hone-in search, sar capture, reports, fake accounts."""
