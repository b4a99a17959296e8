"""The EmBoux API's timestamps, in its answers and in webhook payloads."""

TIMESTAMP = "%Y-%m-%dT%H:%M:%S"


def stamp(value):
    """UTC, ISO 8601, seconds, no timezone suffix; None for no date."""
    return value.strftime(TIMESTAMP) if value else None
