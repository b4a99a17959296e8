"""The EmBoux API's timestamps, in its answers and in webhook payloads."""


def stamp(value):
    """UTC, ISO 8601, seconds, no timezone suffix, a four-digit year at
    least (strftime's ``%Y`` drops the zeros of years before 1000); None for
    no date. PostgreSQL's JSON writes a timestamp truncated to the second
    the same way (``GET /domains/``)."""
    return value.isoformat(timespec="seconds") if value else None
