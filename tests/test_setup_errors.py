"""Without a findable Odoo, both commands stop fast with one clear sentence."""

import os
import stat
import subprocess
import sys
import time

import pytest
from conftest import REPO


@pytest.fixture
def no_odoo_env(tmp_path):
    """A PATH whose python3 sees no site-packages (so no Odoo), and no network."""
    shim = tmp_path / "python3"
    shim.write_text(f'#!/bin/sh\nexec {sys.base_prefix}/bin/python3 -S "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
    env = {k: v for k, v in os.environ.items() if k != "ODOO_SRC"}
    env["PATH"] = f"{tmp_path}:{env['PATH']}"
    # an unusable proxy: the clone fallback cannot reach any git host
    env["HTTPS_PROXY"] = env["https_proxy"] = "http://127.0.0.1:9"
    return env


@pytest.mark.parametrize("command", ["run", "test"])
def test_missing_odoo_is_one_sentence(no_odoo_env, command):
    started = time.monotonic()
    result = subprocess.run(
        [str(REPO / "setup" / command)],
        env=no_odoo_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 2
    assert elapsed < 20
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Odoo 18.0 was not found" in lines[0]
    assert "ODOO_SRC" in lines[0]
    assert "Traceback" not in result.stdout + result.stderr


def test_odoo_src_without_odoo_is_refused(tmp_path):
    env = {**os.environ, "ODOO_SRC": str(tmp_path)}
    result = subprocess.run(
        [str(REPO / "setup" / "run")], env=env, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"emboux: ODOO_SRC={tmp_path} holds no Odoo tree: set ODOO_SRC to the "
        "directory of an Odoo 18.0 Community source tree (the one that holds "
        "odoo-bin and the odoo/ package)."
    )
