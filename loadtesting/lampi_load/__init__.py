"""The LAMPI load tests' own code, one subpackage per job: search, mqtt, runs, reports, buoys (and accounts)."""
