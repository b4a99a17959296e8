"""Storage use and retention in the customer portal."""
