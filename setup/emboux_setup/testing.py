"""Run every check of the repository and close with ``N passed, M failed``.

Three parts, each counted: lint (one check per tool), the addons' Odoo tests
on a fresh database, and the top-level ``tests/`` with pytest. A skipped test
counts as failed: Odoo silently skips browser tours when Chromium or
websocket-client is missing, and a skip must never pass for a success.
"""

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

from .paths import ADDONS, EXTRA_MODULES, LOG_DIR, REPO, venv_bin
from .processes import free_port

TEST_DB = "emboux_test"
SUMMARY_RE = re.compile(
    r"(\d+) failed, (\d+) error\(s\) of (\d+) tests when loading database"
)
SKIP_RE = re.compile(r" INFO \S+ odoo\.addons\.\S+: skipped (\S+)")
ERROR_RE = re.compile(r"^\S+ \S+ \d+ (ERROR|CRITICAL) ")
SHOWN_RE = re.compile(r"(: Starting |when loading database| (WARNING|ERROR|CRITICAL) )")


class Tally:
    """Passed and failed counts per part, printed at the end."""

    def __init__(self):
        self.parts = []

    def add(self, name, passed, failed, note=""):
        self.parts.append((name, passed, failed, note))
        line = f"== {name}: {passed} passed, {failed} failed {note}"
        print(line.rstrip(), flush=True)

    def close(self):
        passed = sum(part[1] for part in self.parts)
        failed = sum(part[2] for part in self.parts)
        print()
        for name, part_passed, part_failed, note in self.parts:
            counts = f"{part_passed:>4} passed {part_failed:>4} failed"
            print(f"  {name:<12} {counts} {note}".rstrip())
        print(f"{passed} passed, {failed} failed", flush=True)
        return 1 if failed or not passed else 0


def lint(tally):
    """ruff, ruff-format and pylint-odoo's mandatory checks: one check each."""
    checks = {
        "ruff": [str(venv_bin("ruff")), "check", "."],
        "ruff-format": [str(venv_bin("ruff")), "format", "--check", "."],
        "pylint-odoo": [
            str(venv_bin("pylint")),
            "--rcfile=.pylintrc-mandatory",
            *ADDONS,
        ],
    }
    passed = failed = 0
    for name, cmd in checks.items():
        print(f"-- lint: {name}", flush=True)
        result = subprocess.run(cmd, cwd=REPO, check=False)
        if result.returncode == 0:
            passed += 1
        else:
            failed += 1
    tally.add("lint", passed, failed)


def odoo_tests(odoo, tally, port):
    """Install both addons on a fresh database and run their tests."""
    odoo.cluster.drop_database(TEST_DB)
    tags = ",".join(f"/{addon}" for addon in ADDONS)
    cmd = odoo.cmd(
        "-d",
        TEST_DB,
        "-i",
        ",".join((*ADDONS, *EXTRA_MODULES)),
        "--without-demo=all",
        "--test-enable",
        f"--test-tags={tags}",
        "--stop-after-init",
        f"--http-port={port}",
        "--log-level=info",
    )
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log_path = LOG_DIR / "odoo-tests.log"
    print(f"-- Odoo tests of {', '.join(ADDONS)} (full log: {log_path})", flush=True)
    summary, skipped, log_errors = None, [], 0
    with log_path.open("w") as log:
        process = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for line in process.stdout:
            log.write(line)
            # log records of interest, and the tracebacks that follow them
            if SHOWN_RE.search(line) or not line[:1].isdigit():
                sys.stdout.write(line)
            found = SUMMARY_RE.search(line)
            if found:
                summary = tuple(int(value) for value in found.groups())
            elif skip := SKIP_RE.search(line):
                skipped.append(skip.group(1))
            elif ERROR_RE.match(line):
                log_errors += 1
        returncode = process.wait()
    if summary is None:
        tally.add("odoo", 0, 1, f"(no test summary; exit code {returncode})")
        return
    failures, errors, run = summary
    failed = failures + errors + len(skipped)
    passed = run - failures - errors - len(skipped)
    notes = []
    if skipped:
        notes.append(f"{len(skipped)} skipped: {', '.join(skipped)}")
    if log_errors and not failures + errors:
        failed += 1
        notes.append(f"{log_errors} ERROR line(s) outside tests")
    if returncode:
        failed += 1
        notes.append(f"exit code {returncode}")
    tally.add("odoo", passed, failed, f"({'; '.join(notes)})" if notes else "")


def pytest_tests(tally, args):
    """The top-level end-to-end tests."""
    junit = LOG_DIR / "pytest.xml"
    junit.unlink(missing_ok=True)
    cmd = [str(venv_bin("python")), "-m", "pytest", "tests", "-p", "no:cacheprovider"]
    # -s: the end-to-end tests print their counts (mail delivered, quotas)
    cmd += ["-s", "-rfEs", f"--junitxml={junit}", *args]
    print("-- top-level tests (pytest)", flush=True)
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    result = subprocess.run(cmd, cwd=REPO, env=env, check=False)
    if not junit.exists():
        tally.add("tests/", 0, 1, f"(pytest exit code {result.returncode})")
        return
    suites = ET.parse(junit).getroot()
    total = failed = skipped = 0
    for suite in suites.iter("testsuite"):
        total += int(suite.get("tests", 0))
        failed += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        skipped += int(suite.get("skipped", 0))
    note = f"({skipped} skipped)" if skipped else ""
    if result.returncode not in (0, 1) and not failed + skipped:
        failed += 1
        note = f"(pytest exit code {result.returncode})"
    tally.add("tests/", total - failed - skipped, failed + skipped, note)


def run_all(odoo, args):
    """Run everything; the return value is the command's exit code."""
    tally = Tally()
    lint(tally)
    odoo_tests(odoo, tally, free_port())
    pytest_tests(tally, args)
    return tally.close()
