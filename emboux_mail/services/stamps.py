"""The EmBoux API's timestamps, in its answers and in webhook payloads."""

# ``stamp`` written by PostgreSQL (to_char), where rows are read in bulk
SQL_TIMESTAMP = 'YYYY-MM-DD"T"HH24:MI:SS'


def stamp(value):
    """UTC, ISO 8601, seconds, no timezone suffix, a four-digit year at
    least (strftime's ``%Y`` drops the zeros of years before 1000); None for
    no date."""
    return value.isoformat(timespec="seconds") if value else None
