"""The private cluster runs as neither root nor postgres, and Odoo's role is
a plain role of its own."""

import pwd

from conftest import REPO
from emboux_setup.postgres import ODOO_ROLE


def test_server_os_user_is_dedicated(cluster):
    pid = int((REPO / "var/pg/data/postmaster.pid").read_text().split()[0])
    with open(f"/proc/{pid}/status") as status:
        uid = next(int(line.split()[1]) for line in status if line.startswith("Uid:"))
    user = pwd.getpwuid(uid).pw_name
    assert uid != 0
    assert user not in ("root", "postgres")


def test_odoo_role_is_not_a_superuser(cluster):
    row = cluster.psql(
        "SELECT current_user, rolsuper, rolcreatedb FROM pg_roles "
        "WHERE rolname = current_user",
        user=ODOO_ROLE,
    )
    assert row == f"{ODOO_ROLE}|f|t"
    assert ODOO_ROLE not in ("root", "postgres")
