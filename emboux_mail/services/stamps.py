"""The EmBoux API's timestamps, in its answers and in webhook payloads."""

TIMESTAMP = "%Y-%m-%dT%H:%M:%S"
# the same, written by PostgreSQL (to_char) where rows are read in bulk
SQL_TIMESTAMP = 'YYYY-MM-DD"T"HH24:MI:SS'


def stamp(value):
    """UTC, ISO 8601, seconds, no timezone suffix; None for no date."""
    return value.strftime(TIMESTAMP) if value else None
