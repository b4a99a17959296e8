"""Set-up, run and test tooling of the EmBoux Mail repository."""
