"""Drive ``odoo-bin`` from the venv against the repository's cluster."""

import hashlib
import subprocess
import sys
import xml.etree.ElementTree as ET

from .paths import ADDONS, EXTRA_MODULES, LOG_DIR, REPO, VAR, SetupError


class Odoo:
    """One Odoo source tree, one venv python, one cluster."""

    def __init__(self, odoo_src, python, cluster):
        self.src = odoo_src
        self.python = python
        self.cluster = cluster
        self.config = VAR / "odoo.conf"
        self._write_config()

    def _write_config(self):
        addons_path = ",".join(
            [str(REPO), str(self.src / "addons"), str(self.src / "odoo" / "addons")]
        )
        options = {
            **self.cluster.dsn_args,
            "db_password": "False",
            "addons_path": addons_path,
            "data_dir": str(VAR / "data"),
            "http_interface": "127.0.0.1",
            "list_db": "False",
        }
        lines = ["[options]"] + [f"{key} = {value}" for key, value in options.items()]
        self.config.write_text("\n".join(lines) + "\n")

    def cmd(self, *args):
        """The argv of ``odoo-bin`` with the repository's configuration."""
        odoo_bin = str(self.src / "odoo-bin")
        return [str(self.python), odoo_bin, "-c", str(self.config), *args]

    def run_logged(self, args, log_name, what):
        """Run odoo-bin to completion with its log in a file; raise on failure."""
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        log = LOG_DIR / log_name
        with log.open("w") as out:
            result = subprocess.run(self.cmd(*args), stdout=out, stderr=out)
        if result.returncode != 0 or " ERROR " in log.read_text():
            tail = log.read_text().strip().splitlines()[-20:]
            print("\n".join(tail), file=sys.stderr)
            raise SetupError(f"{what} failed; the whole log is {log}.")
        return log

    # -- databases -------------------------------------------------------------
    def installed(self, db):
        """True when ``db`` exists and both addons are installed in it."""
        if not self.cluster.database_exists(db):
            return False
        names = ", ".join(f"'{name}'" for name in ADDONS)
        query = (
            "SELECT count(*) FROM ir_module_module "
            f"WHERE name IN ({names}) AND state = 'installed'"
        )
        return self.cluster.psql(query, dbname=db, check=False) == str(len(ADDONS))

    def ensure_database(self, db, demo=True):
        """Create ``db`` with both addons once; upgrade them when their code
        changed since the database was last brought up to date."""
        digest_file = VAR / f"{db}.addons.sha256"
        digest = addons_digest()
        modules = ",".join(ADDONS)
        if not self.installed(db):
            self.cluster.drop_database(db)
            print(
                f"Creating the database {db} with {modules} "
                f"(a minute or two; log: {LOG_DIR / (db + '-init.log')}) ...",
                flush=True,
            )
            args = ["-d", db, "-i", ",".join((*ADDONS, *EXTRA_MODULES))]
            args.append("--stop-after-init")
            if not demo:
                args.append("--without-demo=all")
            self.run_logged(args, f"{db}-init.log", f"creating the database {db}")
        elif digest_file.exists() and digest_file.read_text() == digest:
            return
        else:
            print(f"Upgrading {modules} in {db} ...", flush=True)
            args = ["-d", db, "-u", modules, "-i", ",".join(EXTRA_MODULES)]
            args.append("--stop-after-init")
            self.run_logged(args, f"{db}-upgrade.log", f"upgrading {db}")
        digest_file.write_text(digest)

    def demo_api_key(self, db):
        """(customer, token) of the demo customer key when ``db`` has demo
        data. The token is read from the demo file: the database only holds
        its hash."""
        xmlid = "api_key_northwind_demo"
        query = (
            "SELECT 1 FROM ir_model_data "
            f"WHERE module = 'emboux_mail' AND name = '{xmlid}'"
        )
        if self.cluster.psql(query, dbname=db, check=False) != "1":
            return None
        root = ET.parse(REPO / "emboux_mail" / "demo" / "emboux_mail_demo.xml")
        record = root.find(f".//record[@id='{xmlid}']")
        partner_xmlid = record.find("field[@name='partner_id']").get("ref")
        partner = root.find(f".//record[@id='{partner_xmlid}']")
        return (
            partner.find("field[@name='name']").text,
            record.find("field[@name='token']").text,
        )


def addons_digest():
    """A digest of every file of both addons, to notice code changes."""
    sha = hashlib.sha256()
    for addon in ADDONS:
        for path in sorted((REPO / addon).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                sha.update(str(path.relative_to(REPO)).encode())
                sha.update(path.read_bytes())
    return sha.hexdigest()
