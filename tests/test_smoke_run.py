"""``./setup/run`` serves the product at the URL it prints."""

import requests
from passlib.context import CryptContext
from rpc import OdooRpc


def test_run_serves_login_page(demo_server):
    assert demo_server.url == f"http://127.0.0.1:{demo_server.port}"
    response = requests.get(f"{demo_server.url}/web/login", timeout=30)
    assert response.status_code == 200
    assert 'name="login"' in response.text
    assert "Operator login: admin / password: admin" in demo_server.output()
    # the printed login works
    session = requests.Session()
    page = session.get(f"{demo_server.url}/web/login", timeout=30).text
    csrf = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    login = session.post(
        f"{demo_server.url}/web/login",
        data={"login": "admin", "password": "admin", "csrf_token": csrf},
        timeout=30,
        allow_redirects=False,
    )
    assert login.status_code == 303
    assert "/odoo" in login.headers["Location"]


def test_demo_database_has_menu_and_demo_records(demo_server):
    rpc = OdooRpc(demo_server.url, demo_server.db)
    menus = rpc.call("ir.ui.menu", "search_read", [("name", "=", "Email Hosting")])
    assert len(menus) == 1
    domains = rpc.call(
        "emboux.mail.domain",
        "search_read",
        [],
        fields=["name", "partner_id", "parent_id", "mailbox_count", "mailbox_limit"],
    )
    by_name = {domain["name"]: domain for domain in domains}
    assert {"northwind.example", "shop.northwind.example", "bluelagoon.example"} <= set(
        by_name
    )
    assert by_name["shop.northwind.example"]["parent_id"][1] == "northwind.example"
    # one customer exactly at its mailbox quota
    at_quota = by_name["bluelagoon.example"]
    assert at_quota["mailbox_count"] == at_quota["mailbox_limit"] == 5
    # (other tests share this server and may leave orphaned domains)
    owners = {domain["partner_id"][1] for domain in domains if domain["partner_id"]}
    assert {"Northwind Traders", "Blue Lagoon Bakery"} <= owners


def test_banner_prints_the_demo_token_hashed_in_db(demo_server, cluster):
    line = next(
        line
        for line in demo_server.output().splitlines()
        if "Demo customer API token (Northwind Traders)" in line
    )
    token = line.rsplit(": ", 1)[1]
    rpc = OdooRpc(demo_server.url, demo_server.db)
    keys = rpc.call(
        "emboux.mail.api.key",
        "search_read",
        [("partner_id.name", "=", "Northwind Traders")],
        fields=["token"],
    )
    assert [key["token"] for key in keys] == [False]  # write-only
    stored = cluster.psql(
        "SELECT token_hash FROM emboux_mail_api_key k JOIN res_partner p "
        "ON p.id = k.partner_id WHERE p.name = 'Northwind Traders'",
        dbname=demo_server.db,
    )
    assert token not in stored
    assert CryptContext(["pbkdf2_sha512"]).verify(token, stored)


def test_run_stops_cleanly_on_sigterm(run_server):
    server = run_server("stop")
    assert server.stop() == 0
    try:
        requests.get(f"{server.url}/web/login", timeout=5)
    except requests.ConnectionError:
        return
    raise AssertionError("Odoo still answers after ./setup/run was stopped")
