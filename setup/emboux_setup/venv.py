"""Create ``.venv/`` with Odoo's pinned requirements and the project's own.

The install is skipped when the requirement files have not changed since the
last successful one (a digest is kept inside the venv), so the bootstrap stays
idempotent and a second run costs nothing.
"""

import hashlib
import os
import subprocess
import sys

from .paths import LOG_DIR, REPO, VAR, VENV, SetupError, venv_bin

OWN_REQUIREMENTS = REPO / "setup" / "requirements.txt"
CONSTRAINTS = REPO / "setup" / "constraints.txt"
STAMP = VENV / "emboux-requirements.sha256"


def _odoo_requirements(odoo_src):
    """Odoo's own pins, less python-ldap (auth_ldap only, needs C headers) and
    with psycopg2 taken as the binary wheel of the same version."""
    lines = []
    for line in (odoo_src / "requirements.txt").read_text().splitlines():
        name = line.strip().lower()
        if name.startswith("python-ldap"):
            continue
        if name.startswith("psycopg2=="):
            line = line.replace("psycopg2==", "psycopg2-binary==", 1)
        lines.append(line)
    return "\n".join(lines) + "\n"


def ensure_venv(odoo_src):
    """Make ``.venv`` hold every pinned dependency; return its python."""
    odoo_reqs = _odoo_requirements(odoo_src)
    digest = hashlib.sha256(
        (
            sys.version
            + odoo_reqs
            + OWN_REQUIREMENTS.read_text()
            + CONSTRAINTS.read_text()
        ).encode()
    ).hexdigest()
    python = venv_bin("python")
    if python.exists() and STAMP.exists() and STAMP.read_text() == digest:
        return python
    if not python.exists():
        print(f"Creating the virtualenv {VENV} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    VAR.mkdir(exist_ok=True)
    LOG_DIR.mkdir(exist_ok=True)
    odoo_file = VAR / "requirements-odoo.txt"
    odoo_file.write_text(odoo_reqs)
    log = LOG_DIR / "pip.log"
    print(
        f"Installing pinned Python dependencies into {VENV} "
        f"(about a minute; log: {log}) ...",
        flush=True,
    )
    env = dict(os.environ, PIP_CONSTRAINT=str(CONSTRAINTS), PIP_NO_INPUT="1")
    cmd = [str(python), "-m", "pip", "install", "--disable-pip-version-check"]
    cmd += ["-r", str(odoo_file), "-r", str(OWN_REQUIREMENTS)]
    with log.open("w") as out:
        result = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    if result.returncode != 0:
        tail = log.read_text().strip().splitlines()[-15:]
        print("\n".join(tail), file=sys.stderr)
        raise SetupError(
            f"installing the Python dependencies failed; the pip log is {log}."
        )
    STAMP.write_text(digest)
    return python
