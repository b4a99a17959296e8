"""``./setup/run`` serves the product at the URL it prints."""

import requests


def test_run_serves_login_page(run_server):
    server = run_server("smoke")
    assert server.url == f"http://127.0.0.1:{server.port}"
    response = requests.get(f"{server.url}/web/login", timeout=30)
    assert response.status_code == 200
    assert 'name="login"' in response.text
    assert "Operator login: admin" in server.output()
    # the printed login works
    session = requests.Session()
    page = session.get(f"{server.url}/web/login", timeout=30).text
    csrf = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    login = session.post(
        f"{server.url}/web/login",
        data={"login": "admin", "password": "admin", "csrf_token": csrf},
        timeout=30,
        allow_redirects=False,
    )
    assert login.status_code == 303
    assert "/odoo" in login.headers["Location"]


def test_run_stops_cleanly_on_sigterm(run_server):
    server = run_server("stop")
    assert server.stop() == 0
    try:
        requests.get(f"{server.url}/web/login", timeout=5)
    except requests.ConnectionError:
        return
    raise AssertionError("Odoo still answers after ./setup/run was stopped")
