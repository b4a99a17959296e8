"""Translations follow the code: each addon's template is exactly what Odoo
exports from a database with both addons, and its Spanish catalogue
translates every term of that template, no more, with the same placeholders.
A string added or changed in Python, a view or data without re-exporting the
template, or without translating it, fails here."""

import configparser
import os
import re
import subprocess
from collections import Counter
from pathlib import Path

import polib
import pytest
from emboux_setup.paths import ADDONS, LOG_DIR, REPO, VAR, venv_bin
from emboux_setup.processes import free_port

# written by ./setup/run and ./setup/test for the repository's cluster
CONFIG = VAR / "odoo.conf"
# EMBOUX_I18N_DB: another name, so that two checkouts can run this at once
DB = os.environ.get("EMBOUX_I18N_DB", "emboux_e2e_i18n")
LANG = "es"
# Python's %-formats and str.format fields, QWeb's {{ expressions }}
PLACEHOLDER_RE = re.compile(r"%\(\w+\)[sdr]|%[sdr%]|\{\{.*?\}\}|\{\w*\}")
SHOWN = 20


def odoo_bin():
    """odoo-bin of the Odoo tree whose addons the configuration lists."""
    config = configparser.ConfigParser()
    assert config.read(CONFIG), f"{CONFIG} is missing: ./setup/test writes it."
    for path in config["options"]["addons_path"].split(","):
        candidate = Path(path.strip()).parent / "odoo-bin"
        if candidate.is_file():
            return candidate
    raise AssertionError(f"No odoo-bin beside the addons paths of {CONFIG}.")


def odoo_command(db, *args):
    """odoo-bin with the repository's configuration, run once on ``db``."""
    config = ["-c", str(CONFIG), "-d", db]
    return [
        str(venv_bin("python")),
        str(odoo_bin()),
        *config,
        *args,
        "--stop-after-init",
    ]


def export_command(addon, target, db):
    """Odoo's export of the template of ``addon`` to ``target``."""
    export = [f"--i18n-export={target}", f"--modules={addon}", "--language=en_US"]
    return odoo_command(db, *export)


def odoo(log_name, args):
    """Run odoo-bin to completion; fail with the end of its log."""
    log = LOG_DIR / log_name
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        result = subprocess.run(
            [*args, f"--http-port={free_port()}"],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    output = log.read_text()
    tail = "\n".join(output.splitlines()[-20:])
    assert result.returncode == 0 and " ERROR " not in output, (
        f"odoo-bin failed (log: {log}):\n{tail}"
    )


@pytest.fixture(scope="module")
def exported(cluster, tmp_path_factory):
    """Each addon's template as Odoo exports it from a fresh database
    without demo data, as CI installs the addons."""
    folder = tmp_path_factory.mktemp("i18n")
    cluster.drop_database(DB)
    try:
        init = odoo_command(DB, "-i", ",".join(ADDONS), "--without-demo=all")
        odoo(f"{DB}-init.log", init)
        templates = {}
        for addon in ADDONS:
            templates[addon] = folder / f"{addon}.pot"
            command = export_command(addon, templates[addon], DB)
            odoo(f"{DB}-export-{addon}.log", command)
        yield templates
    finally:
        cluster.drop_database(DB)


def catalogue(path):
    """(msgid, msgctxt) -> entry of a .po or .pot file; empty when missing."""
    if not path.exists():
        return {}
    return {(entry.msgid, entry.msgctxt): entry for entry in polib.pofile(str(path))}


def listing(title, keys):
    """A few of ``keys`` under ``title``, for a failure message."""
    if not keys:
        return ""
    lines = [f"{title} ({len(keys)}):"]
    for msgid, msgctxt in keys[:SHOWN]:
        context = f" [msgctxt {msgctxt!r}]" if msgctxt else ""
        lines.append(f"  {msgid[:100]!r}{context}")
    if len(keys) > SHOWN:
        lines.append(f"  ... and {len(keys) - SHOWN} more")
    return "\n".join(lines) + "\n"


def ordered(keys):
    """(msgid, msgctxt) pairs sorted, a missing msgctxt first."""
    return sorted(keys, key=lambda key: (key[0], key[1] or ""))


def placeholders(text):
    return Counter(PLACEHOLDER_RE.findall(text))


@pytest.mark.parametrize("addon", ADDONS)
def test_template_is_current(addon, exported):
    committed = REPO / addon / "i18n" / f"{addon}.pot"
    fresh, known = set(catalogue(exported[addon])), set(catalogue(committed))
    missing, extra = ordered(fresh - known), ordered(known - fresh)
    command = export_command(addon, committed.relative_to(REPO), "<database>")
    assert not missing and not extra, (
        f"{committed.relative_to(REPO)} is out of date.\n"
        + listing("Terms of the code missing from it", missing)
        + listing("Terms no longer in the code", extra)
        + f"Regenerate it: cp {exported[addon]} {committed}\n"
        + "or, on a database with both addons installed without demo data:\n  "
        + " ".join(command)
    )


@pytest.mark.parametrize("addon", ADDONS)
def test_spanish_covers_template(addon):
    folder = REPO / addon / "i18n"
    template = catalogue(folder / f"{addon}.pot")
    translated = catalogue(folder / f"{LANG}.po")
    untranslated = ordered(
        key
        for key in template
        if key not in translated or not translated[key].translated()
    )
    stale = ordered(set(translated) - set(template))
    mismatched = ordered(
        key
        for key, entry in translated.items()
        if entry.translated()
        and placeholders(entry.msgid) != placeholders(entry.msgstr)
    )
    po = f"{addon}/i18n/{LANG}.po"
    assert not untranslated and not stale and not mismatched, (
        f"{po} does not match {addon}/i18n/{addon}.pot.\n"
        + listing("Untranslated (empty, fuzzy or absent msgstr)", untranslated)
        + listing("Stale (no longer in the template)", stale)
        + listing("Placeholders differ from the msgid", mismatched)
        + "Bring it in line with the template (gettext tools), then translate "
        + "the empty msgstr and keep every placeholder of its msgid:\n"
        + f"  msgmerge --update --backup=off --no-fuzzy-matching {po} "
        + f"{addon}/i18n/{addon}.pot && msgattrib --no-obsolete -o {po} {po}"
    )
