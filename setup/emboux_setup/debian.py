"""Install the Debian packages a command needs, or say which are missing."""

import os
import shutil
import subprocess

from .paths import SetupError

_updated = False


def ensure_packages(commands):
    """``commands`` maps an executable to the Debian package providing it."""
    global _updated
    # daemons live in sbin, which a normal user's PATH may lack
    path = f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin"
    missing = sorted(
        {pkg for exe, pkg in commands.items() if not shutil.which(exe, path=path)}
    )
    if not missing:
        return
    if os.geteuid() != 0:
        raise SetupError(
            f"missing Debian package(s) {', '.join(missing)}: install them with "
            f"'sudo apt-get install {' '.join(missing)}' and run again."
        )
    print(f"Installing Debian package(s): {', '.join(missing)} ...", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    quiet = {"stdout": subprocess.DEVNULL, "env": env}
    if not _updated:
        subprocess.run(["apt-get", "update", "-qq"], check=False, **quiet)
        _updated = True
    result = subprocess.run(
        ["apt-get", "install", "-y", "-qq", *missing],
        check=False,
        **quiet,
    )
    if result.returncode != 0:
        raise SetupError(f"apt-get could not install {', '.join(missing)}.")
