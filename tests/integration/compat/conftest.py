"""Every test here runs once per runtime (pyrunc, runc): see tests/differential.py."""

from differential import any_rt  # noqa: F401 - the fixture, re-exported
