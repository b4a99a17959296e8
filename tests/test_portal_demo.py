"""The demo database's portal user sees Northwind's hosting at /my/email."""

import re

import requests


def _login(server, login, password):
    session = requests.Session()
    page = session.get(f"{server.url}/web/login", timeout=30).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    answer = session.post(
        f"{server.url}/web/login",
        data={"login": login, "password": password, "csrf_token": csrf},
        timeout=30,
    )
    assert answer.status_code == 200
    return session


def test_demo_portal_user_sees_only_northwind(demo_server):
    line = next(
        line
        for line in demo_server.output().splitlines()
        if "Customer portal login" in line
    )
    login, password = re.search(r": (\S+) / password: (\S+)", line).groups()
    session = _login(demo_server, login, password)
    domains = session.get(f"{demo_server.url}/my/email", timeout=30)
    assert domains.status_code == 200
    assert "northwind.example" in domains.text
    assert "shop.northwind.example" in domains.text
    assert "bluelagoon.example" not in domains.text
    link = re.search(
        r'href="(/my/email/domain/\d+)"[^>]*>\s*northwind\.example', domains.text
    )
    page = session.get(demo_server.url + link.group(1), timeout=30).text
    assert "ceo@northwind.example" in page and "contact@northwind.example" in page
    keys = session.get(f"{demo_server.url}/my/email/keys", timeout=30).text
    assert "Northwind web shop" in keys
