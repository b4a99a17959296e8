"""Install the Debian packages a command needs, or say which are missing."""

import os
import shutil
import subprocess

from .paths import SetupError

_updated = False


# answers to the questions package scripts would ask
PRESEED = (
    "postfix postfix/main_mailer_type select No configuration\n"
    "postfix postfix/mailname string localhost\n"
)


def _present(name):
    """An absolute path must exist; a command must be on PATH (or in sbin,
    which a normal user's PATH may lack)."""
    if name.startswith("/"):
        return os.path.exists(name)
    return bool(
        shutil.which(name, path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")
    )


def ensure_packages(commands):
    """``commands`` maps an executable (or a file's absolute path) to the
    Debian package providing it."""
    global _updated
    missing = sorted({pkg for name, pkg in commands.items() if not _present(name)})
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
    subprocess.run(["debconf-set-selections"], input=PRESEED.encode(), check=False)
    result = subprocess.run(
        ["apt-get", "install", "-y", "-qq", *missing],
        check=False,
        **quiet,
    )
    if result.returncode != 0:
        raise SetupError(f"apt-get could not install {', '.join(missing)}.")
