"""Where the repository keeps its generated state (all of it git-ignored)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VENV = REPO / ".venv"
VAR = REPO / "var"
LOG_DIR = VAR / "log"
ADDONS = ("emboux_mail", "emboux_mail_api")


class SetupError(Exception):
    """A problem the user must fix; printed as one sentence, never a traceback."""


def venv_bin(name):
    return VENV / "bin" / name
