"""Play an Odoo web tour of emboux_mail in a real headless Chromium against
any running server (one Odoo, or nginx in front of several), without Odoo's
HttpCase, which can only drive the server of its own test run.

``prepare`` creates over RPC what ``emboux_mail_portal_tour`` expects,
``run`` plays a tour as ``HttpCase.start_tour`` does, and ``check`` asserts
over RPC what the portal tour must have left (see ``TestPortalTour`` in
``emboux_mail/tests/test_portal.py``)."""

import contextlib
import itertools
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import requests
import websocket

TOUR = "emboux_mail_portal_tour"
# what the portal tour types and looks for
DOMAIN = "acme.test"
NEW_PASSWORD = "Tour-Initial-Secret-2"
CHANGED_PASSWORD = "Tour-Changed-Secret-3"
KEY_NAME = "Tour key"
# what web_tour logs once the last step passed (start_tour's success signal)
SUCCESS = "tour succeeded"
# HttpCase's browser size: the portal's desktop layout
WINDOW = {"width": 1366, "height": 768, "deviceScaleFactor": 1, "mobile": False}
CHROMIUM_SWITCHES = [
    "--headless",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-background-timer-throttling",
    "--disable-backgrounding-occluded-windows",
    "--disable-renderer-backgrounding",
    "--disable-breakpad",
    "--disable-dev-shm-usage",
    "--disable-gpu",
    "--disable-translate",
    "--remote-debugging-port=0",
]


# -- the tour's data -----------------------------------------------------------
def prepare(rpc, suffix=None):
    """What TestPortalTour sets up before its tour: a tenant company whose
    plan allows 2 mailboxes per domain, a portal user among its contacts,
    and the domain acme.test with one mailbox, one alias and one API key.

    ``suffix`` keeps every other name apart from the database's records;
    acme.test itself is the tour's, so the database must not hold it yet.
    Returns the portal ``login`` and ``password`` and the records' ids."""
    suffix = suffix or secrets.token_hex(4)
    taken = rpc.call("emboux.mail.domain", "search_count", [("name", "=", DOMAIN)])
    assert not taken, f"{DOMAIN} exists already: the portal tour creates in it"
    plan = rpc.call(
        "emboux.mail.plan",
        "create",
        {
            "name": f"Tour plan {suffix}",
            "quota_mb": 500,
            "domains_allowed": 5,
            "mailboxes_per_domain": 2,
            "aliases_per_mailbox": 2,
        },
    )
    company = rpc.call(
        "res.partner",
        "create",
        {
            "name": f"Acme {suffix}",
            "is_company": True,
            "emboux_plan_id": plan,
            "emboux_partner_ref": f"partner_tour_{suffix}",
        },
    )
    login = f"acme.tour.{suffix}@example.com"
    password = secrets.token_urlsafe(12)
    contact = rpc.call(
        "res.partner",
        "create",
        {"name": f"Acme {suffix} contact", "parent_id": company, "email": login},
    )
    _model, portal = rpc.call(
        "ir.model.data", "check_object_reference", "base", "group_portal"
    )
    user = rpc.call(
        "res.users",
        "create",
        {
            "login": login,
            "password": password,
            "partner_id": contact,
            "groups_id": [(6, 0, [portal])],
        },
        context={"no_reset_password": True},
    )
    domain = rpc.call(
        "emboux.mail.domain", "create", {"name": DOMAIN, "partner_id": company}
    )
    mailbox = rpc.call(
        "emboux.mail.mailbox",
        "create",
        {"email": f"info@{DOMAIN}", "password": "Initial-Secret-1"},
    )
    rpc.call(
        "emboux.mail.alias",
        "create",
        {"source": f"contact@{DOMAIN}", "destination": f"info@{DOMAIN}"},
    )
    rpc.call(
        "emboux.mail.api.key",
        "create",
        {
            "name": f"Acme {suffix} shop",
            "partner_id": company,
            "token": f"emb_{secrets.token_urlsafe(30)}",
        },
    )
    return {
        "login": login,
        "password": password,
        "user_id": user,
        "partner_id": company,
        "plan_id": plan,
        "domain_id": domain,
        "mailbox_id": mailbox,
    }


def check(rpc, prepared):
    """What TestPortalTour asserts after its tour: the new mailbox has the
    changed password, the third one was refused (2 mailboxes), the alias
    forwards to the new mailbox, and the tour's API key was revoked."""
    second = rpc.call(
        "emboux.mail.mailbox", "search", [("email", "=", f"second@{DOMAIN}")]
    )
    assert len(second) == 1, f"second@{DOMAIN}: {second}"
    assert _password_matches(rpc, second[0], CHANGED_PASSWORD), "not changed"
    assert not _password_matches(rpc, second[0], NEW_PASSWORD), "still the first"
    third = rpc.call(
        "emboux.mail.mailbox", "search", [("email", "=", f"third@{DOMAIN}")]
    )
    assert not third, f"third@{DOMAIN} was created past the quota"
    [domain] = rpc.call(
        "emboux.mail.domain", "read", [prepared["domain_id"]], ["mailbox_count"]
    )
    assert domain["mailbox_count"] == 2, domain
    aliases = rpc.call(
        "emboux.mail.alias",
        "search_read",
        [("source", "=", f"sales@{DOMAIN}")],
        ["destination"],
    )
    assert [a["destination"] for a in aliases] == [f"second@{DOMAIN}"], aliases
    keys = rpc.call(
        "emboux.mail.api.key",
        "search_read",
        [("name", "=", KEY_NAME), ("partner_id", "=", prepared["partner_id"])],
        ["active"],
        context={"active_test": False},
    )
    assert [k["active"] for k in keys] == [False], keys


def _password_matches(rpc, mailbox_id, password):
    """The module's own check of a mailbox password, run in the server by a
    server action: the hash is in a column that no RPC read returns."""
    [model] = rpc.call("ir.model", "search", [("model", "=", "emboux.mail.mailbox")])
    action = rpc.call(
        "ir.actions.server",
        "create",
        {
            "name": "Portal tour: check a mailbox password",
            "model_id": model,
            "state": "code",
            "code": f"action = record._emboux_check_password({password!r})",
        },
    )
    try:
        return rpc.call(
            "ir.actions.server",
            "run",
            [action],
            context={
                "active_model": "emboux.mail.mailbox",
                "active_id": mailbox_id,
                "active_ids": [mailbox_id],
            },
        )
    finally:
        rpc.call("ir.actions.server", "unlink", [action])


# -- the browser ---------------------------------------------------------------
def run(base_url, login, password, tour=TOUR, start="/my", timeout=180):
    """Play ``tour`` as ``login`` in a headless Chromium on ``base_url``, as
    ``HttpCase.start_tour`` does: open ``start`` with the test assets
    (``debug=tests``), wait for ``odoo.isTourReady``, call
    ``odoo.startTour`` and wait for "tour succeeded" in the console, where
    any console error or uncaught exception fails it. Raises AssertionError
    with the failing step and the console when it fails or outlasts
    ``timeout`` seconds."""
    base_url = base_url.rstrip("/")
    deadline = time.monotonic() + timeout
    session_id = _log_in(base_url, login, password)
    url = f"{base_url}{start}{'&' if '?' in start else '?'}debug=tests"
    options = {
        "stepDelay": 0,
        "keepWatchBrowser": False,
        "debug": False,
        "startUrl": start,
        "delayToCheckUndeterminisms": 0,
    }
    with _chromium() as tab:
        tab.send(
            "Network.setCookie",
            name="session_id",
            value=session_id,
            url=f"{base_url}/",
            path="/",
            httpOnly=True,
        )
        navigation = tab.send("Page.navigate", url=url)
        assert "errorText" not in navigation, f"{url}: {navigation['errorText']}"
        tab.wait_ready(tour, url, deadline)
        tab.evaluate(f"odoo.startTour({json.dumps(tour)}, {json.dumps(options)})")
        tab.wait_result(tour, deadline)


def _log_in(base_url, login, password):
    """A session of ``login``, opened through the login form (with its CSRF
    token) as a user would: the browser then only needs its cookie."""
    with requests.Session() as http:
        form = http.get(f"{base_url}/web/login", timeout=30)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert csrf, f"no login form at {base_url}/web/login ({form.status_code})"
        answer = http.post(
            f"{base_url}/web/login",
            data={"login": login, "password": password, "csrf_token": csrf[1]},
            allow_redirects=False,
            timeout=30,
        )
        assert answer.status_code == 303, f"{login} cannot log in at {base_url}"
        return http.cookies["session_id"]


@contextlib.contextmanager
def _chromium():
    """A headless Chromium on a fresh profile; killed, with its profile
    removed, however the tour ends."""
    directory = Path(tempfile.mkdtemp(prefix="portal_tour_"))
    profile = directory / "profile"
    log_path = directory / "chromium.log"
    command = [
        shutil.which("chromium") or "chromium",
        *CHROMIUM_SWITCHES,
        f"--user-data-dir={profile}",
        "about:blank",
    ]
    if os.geteuid() == 0:
        command.insert(1, "--no-sandbox")
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    tab = None
    try:
        port = _devtools_port(process, profile, log_path)
        tab = _Tab(_page_websocket(port))
        yield tab
    finally:
        if tab:
            tab.ws.close()
        _stop(process)
        shutil.rmtree(directory, ignore_errors=True)


def _devtools_port(process, profile, log_path, timeout=30):
    """The port Chromium chose: ``--remote-debugging-port=0`` makes it
    write it in DevToolsActivePort, in its profile."""
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_file.is_file() and port_file.stat().st_size > 5:
            return int(port_file.read_text().split()[0])
        if process.poll() is not None:
            break
        time.sleep(0.1)
    raise AssertionError(f"Chromium did not start:\n{log_path.read_text()[-2000:]}")


def _page_websocket(port, timeout=10):
    """The DevTools address of the tab Chromium opened on about:blank."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        targets = requests.get(f"http://127.0.0.1:{port}/json/list", timeout=5)
        pages = [t for t in targets.json() if t["type"] == "page"]
        if pages:
            return pages[0]["webSocketDebuggerUrl"]
        time.sleep(0.1)
    raise AssertionError("Chromium opened no tab")


def _stop(process):
    """SIGTERM to Chromium's process group (its renderers too), SIGKILL if
    it lingers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
            return


class _DevToolsError(AssertionError):
    """Chromium refused a command (e.g. while the tab changes page)."""


class _Tab:
    """Chromium's one tab over the DevTools protocol. What its console and
    uncaught exceptions report is recorded as it arrives: an error fails the
    tour, "tour succeeded" ends it."""

    def __init__(self, ws_url):
        # Chromium refuses a websocket that sends an Origin it does not allow
        self.ws = websocket.create_connection(ws_url, suppress_origin=True)
        self.ids = itertools.count(1)
        self.console = []
        self.errors = []
        self.succeeded = False
        self.send("Runtime.enable")
        self.send("Emulation.setFocusEmulationEnabled", enabled=True)
        self.send("Emulation.setDeviceMetricsOverride", **WINDOW)

    def send(self, method, timeout=60, **params):
        """Run a DevTools command and return its result."""
        ident = next(self.ids)
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = self._receive(deadline - time.monotonic())
            if message and message.get("id") == ident:
                if "error" in message:
                    raise _DevToolsError(f"{method}: {message['error']}")
                return message["result"]
        raise AssertionError(f"Chromium did not answer {method} in {timeout} s")

    def evaluate(self, expression):
        """The value of ``expression`` in the page, awaited if a promise."""
        result = self.send(
            "Runtime.evaluate",
            expression=expression,
            awaitPromise=True,
            returnByValue=True,
        )
        if "exceptionDetails" in result:
            raise AssertionError(_exception_text(result["exceptionDetails"]))
        return result["result"].get("value")

    def wait_ready(self, tour, url, deadline):
        """Wait until the page's tour service knows ``tour`` and its
        ``wait_for`` resolved (``odoo.isTourReady``); fail early when the
        page is the login form or the tour is not registered."""
        probe = f"""(async () => {{
            if (document.readyState !== "complete" || !window.odoo?.isTourReady) {{
                return "loading";
            }}
            if (location.pathname.startsWith("/web/login")) {{
                return "login";
            }}
            try {{
                return (await odoo.isTourReady({json.dumps(tour)})) && "ready";
            }} catch {{
                return "unknown";
            }}
        }})()"""
        state = "loading"
        while time.monotonic() < deadline:
            with contextlib.suppress(_DevToolsError):
                state = self.evaluate(probe)
            if state == "ready":
                return
            assert state != "login", f"{url} sent the browser to the login form"
            assert state != "unknown", (
                f"Tour {tour!r} is not registered at {url}: is the module that "
                "defines it installed, and its tour in web.assets_tests?"
            )
            self._fail_on_errors(f"Opening {url} for tour {tour!r}")
            time.sleep(0.2)
        raise AssertionError(
            f"Tour {tour!r} was never ready at {url} (last state {state!r})"
            f"{self._console_tail()}"
        )

    def wait_result(self, tour, deadline):
        """Wait for the tour's end: its success signal or the first error."""
        while not self.succeeded:
            self._fail_on_errors(f"Tour {tour!r} failed")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"Tour {tour!r} did not end in time (its last step is the last "
                    f"[log] line){self._console_tail()}"
                )
            self._receive(min(remaining, 1))

    def _fail_on_errors(self, title):
        if not self.errors:
            return
        # web_tour logs where the failed step sits in the tour just after
        # the error: wait a moment for it
        end = time.monotonic() + 1
        while time.monotonic() < end:
            self._receive(end - time.monotonic())
        errors = "\n".join(self.errors)
        raise AssertionError(f"{title}:\n{errors}{self._console_tail()}")

    def _console_tail(self, count=40):
        tail = "\n".join(f"[{kind}] {text}" for kind, text in self.console[-count:])
        return f"\n\nBrowser console (last {count} messages):\n{tail}" if tail else ""

    def _receive(self, timeout):
        """The next message from Chromium, None if none came in
        ``timeout`` seconds; events update what the tab recorded."""
        self.ws.settimeout(max(timeout, 0.01))
        try:
            message = json.loads(self.ws.recv())
        except websocket.WebSocketTimeoutException:
            return None
        params = message.get("params", {})
        if message.get("method") == "Runtime.consoleAPICalled":
            text = " ".join(_remote_text(arg) for arg in params.get("args", []))
            self.console.append((params["type"], text))
            if params["type"] == "error":
                self.errors.append(text)
            elif params["type"] == "log" and text == SUCCESS:
                self.succeeded = True
        elif message.get("method") == "Runtime.exceptionThrown":
            self.errors.append(_exception_text(params["exceptionDetails"]))
        return message


def _remote_text(arg):
    """A console argument as text: its value, else Chromium's description."""
    if "value" in arg:
        value = arg["value"]
        return value if isinstance(value, str) else json.dumps(value)
    return arg.get("description", arg["type"])


def _exception_text(details):
    exception = details.get("exception", {})
    return f"{details.get('text', '')} {exception.get('description', '')}".strip()
