"""Storage use and retention: the rules and the backend."""
