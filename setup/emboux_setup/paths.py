"""Where the repository keeps its generated state (all of it git-ignored)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VENV = REPO / ".venv"
VAR = REPO / "var"
LOG_DIR = VAR / "log"
ADDONS = ("emboux_mail", "emboux_mail_api")
# installed beside them: Odoo's demo payment provider, so that a customer can
# pay a plan invoice from the portal in the demo and in the tests
EXTRA_MODULES = ("payment_demo",)


class SetupError(Exception):
    """A problem the user must fix; printed as one sentence, never a traceback."""


def venv_bin(name):
    return VENV / "bin" / name
