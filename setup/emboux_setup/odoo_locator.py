"""Find an Odoo 18.0 source tree without importing it.

Order: ``$ODOO_SRC``; the tree the machine's python3 locates for ``odoo``
(an installed Odoo, or a ``.pth`` file pointing at a checkout); a shallow
clone of the official 18.0 branch when a git host is reachable.
"""

import importlib.util
import os
import re
import subprocess
from pathlib import Path

from .paths import VAR, SetupError

OFFICIAL_REPO = "https://github.com/odoo/odoo.git"
CLONE_DIR = VAR / "odoo-src"
HINT = (
    "set ODOO_SRC to the directory of an Odoo 18.0 Community source tree "
    "(the one that holds odoo-bin and the odoo/ package)"
)


def _version(tree):
    """Return the major version of the tree at ``tree`` or None."""
    release = Path(tree) / "odoo" / "release.py"
    if not release.is_file() or not (Path(tree) / "addons").is_dir():
        return None
    match = re.search(r"^version_info\s*=\s*\(\s*(\d+)", release.read_text(), re.M)
    return int(match.group(1)) if match else None


def _from_env():
    src = os.environ.get("ODOO_SRC")
    if not src:
        return None
    version = _version(src)
    if version != 18:
        found = "no Odoo tree" if version is None else f"Odoo {version}"
        raise SetupError(f"ODOO_SRC={src} holds {found}: {HINT}.")
    return Path(src).resolve()


def _from_python():
    try:
        spec = importlib.util.find_spec("odoo")
    except (ImportError, ValueError):
        return None
    if not spec or not spec.origin:
        return None
    tree = Path(spec.origin).resolve().parents[1]
    return tree if _version(tree) == 18 else None


def _from_clone():
    if _version(CLONE_DIR) == 18:
        return CLONE_DIR
    probe = ["git", "ls-remote", "--heads", OFFICIAL_REPO, "18.0"]
    try:
        subprocess.run(probe, check=True, capture_output=True, timeout=15)
    except (OSError, subprocess.SubprocessError):
        return None
    print(f"Cloning Odoo 18.0 into {CLONE_DIR} (shallow) ...", flush=True)
    CLONE_DIR.parent.mkdir(parents=True, exist_ok=True)
    clone = ["git", "clone", "--depth=1", "--branch=18.0", OFFICIAL_REPO]
    result = subprocess.run([*clone, str(CLONE_DIR)], check=False)
    return CLONE_DIR if result.returncode == 0 and _version(CLONE_DIR) == 18 else None


def find_odoo():
    """Return the path of an Odoo 18.0 source tree or raise SetupError."""
    tree = _from_env() or _from_python() or _from_clone()
    if tree is None:
        raise SetupError(f"Odoo 18.0 was not found: {HINT}.")
    return tree
