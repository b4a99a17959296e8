"""The screenshots of the addons' READMEs, taken from the demo data.

Serves a demo database of its own, logs in through ``/web/login`` as the
operator and as the demo portal user in a headless Chromium, and saves each
page at 1280x800 into the addon's ``static/description/``, as small
palette PNGs. Run it with ``python3 setup/emboux_setup screenshots``
(options: ``--db``, ``--http-port``) after a view changes, then
``python3 setup/emboux_setup readme``.

It runs with the venv's python (Pillow). Chromium is driven over the
DevTools protocol through a pipe (``--remote-debugging-pipe``): no port to
open, and nothing to install beyond Chromium.
"""

import argparse
import base64
import contextlib
import dataclasses
import fcntl
import io
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from PIL import Image, ImageChops

from . import debian
from .cli import PORTAL_DEMO_LOGIN, PORTAL_DEMO_PASSWORD, wait_http
from .odoo_locator import find_odoo
from .odoo_server import Odoo
from .paths import LOG_DIR, REPO, SetupError
from .postgres import Cluster
from .processes import free_port, kill_group

DEFAULT_DB = "emboux_screenshots"
OPERATOR = ("admin", "admin")
SIZE = {"width": 1280, "height": 800}
COLOURS = 256
# what is kept below the last thing on a page that ends above the screen's end
MARGIN = 24
# what the demo customer's token asks, so that its API log has lines
API_CALLS = ("/domains/", "/users/", "/aliases/", "/users/nobody@unknown.example/quota")
# a page is done once this holds and stays so for SETTLE seconds
BACKEND_READY = (
    "document.readyState === 'complete'"
    " && !!document.querySelector('.o_action_manager .o_view_controller')"
    " && !document.querySelector('.o_loading_indicator, .o_blockUI')"
)
PORTAL_READY = "document.readyState === 'complete'"
SETTLE = 1.5
TIMEOUT = 60


@dataclasses.dataclass
class Shot:
    """One screenshot: whose session, which page, which file."""

    addon: str
    name: str
    user: tuple
    path: str
    ready: str
    # JavaScript run once the page is ready (e.g. open a tab)
    action: str | None = None


def shots(ids):
    """The screenshots, given the ids of the demo records they show."""
    domain, customer = ids["domain_northwind_demo"], ids["partner_northwind_demo"]
    portal = (PORTAL_DEMO_LOGIN, PORTAL_DEMO_PASSWORD)
    return [
        Shot(
            "emboux_mail",
            "screenshot_overview.png",
            OPERATOR,
            "/odoo/action-emboux_mail.emboux_mail_overview_action",
            "document.readyState === 'complete'"
            " && !!document.querySelector('.o_emboux_overview .o_emboux_kpi')",
        ),
        Shot(
            "emboux_mail",
            "screenshot_domain.png",
            OPERATOR,
            f"/odoo/action-emboux_mail.emboux_mail_domain_action/{domain}",
            BACKEND_READY,
        ),
        Shot(
            "emboux_mail",
            "screenshot_customer.png",
            OPERATOR,
            f"/odoo/action-emboux_mail.emboux_mail_customer_action/{customer}",
            BACKEND_READY,
            action="document.querySelector('.o_notebook a[name=\"emboux_mail\"]')"
            ".click()",
        ),
        Shot(
            "emboux_mail_api",
            "screenshot_api_requests.png",
            OPERATOR,
            "/odoo/action-emboux_mail_api.emboux_mail_api_usage_action",
            BACKEND_READY,
        ),
        Shot(
            "emboux_mail",
            "screenshot_portal.png",
            portal,
            f"/my/email/domain/{domain}",
            PORTAL_READY,
        ),
    ]


# -- Chromium ------------------------------------------------------------------
class Browser:
    """A headless Chromium on a fresh profile, one tab, driven over the
    DevTools pipe: commands go to its fd 3, answers come from its fd 4,
    each a JSON message ended by a NUL byte."""

    def __init__(self):
        self.profile = Path(tempfile.mkdtemp(prefix="emboux_screenshots_"))
        commands_in, commands_out = os.pipe()
        answers_in, answers_out = os.pipe()
        # above 4, so that placing them at 3 and 4 in the child overwrites
        # neither of them
        child_in = fcntl.fcntl(commands_in, fcntl.F_DUPFD_CLOEXEC, 10)
        child_out = fcntl.fcntl(answers_out, fcntl.F_DUPFD_CLOEXEC, 10)
        for fd in (commands_in, answers_out):
            os.close(fd)

        def place_pipes():
            os.dup2(child_in, 3)
            os.dup2(child_out, 4)

        command = [
            shutil.which("chromium") or "chromium",
            "--headless",
            "--remote-debugging-pipe",
            f"--user-data-dir={self.profile}",
            f"--window-size={SIZE['width']},{SIZE['height']}",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-extensions",
            "about:blank",
        ]
        if os.geteuid() == 0:
            command.insert(1, "--no-sandbox")
        # close_fds=False: only 0-2 and the two placed pipes are inheritable
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=False,
            preexec_fn=place_pipes,  # safe: no other thread runs here
            start_new_session=True,
        )
        for fd in (child_in, child_out):
            os.close(fd)
        self.commands, self.answers = commands_out, answers_in
        self.buffer = b""
        self.last_id = 0
        self.session = None
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        attached = self.send("Target.attachToTarget", targetId=target, flatten=True)
        self.session = attached["sessionId"]
        self.send(
            "Emulation.setDeviceMetricsOverride",
            deviceScaleFactor=1,
            mobile=False,
            **SIZE,
        )

    def send(self, method, **params):
        """Run a DevTools command in the tab; return its result."""
        self.last_id += 1
        message = {"id": self.last_id, "method": method, "params": params}
        if self.session:
            message["sessionId"] = self.session
        data = json.dumps(message).encode() + b"\0"
        while data:
            data = data[os.write(self.commands, data) :]
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            answer = self._receive(deadline)
            if answer.get("id") != self.last_id:
                continue  # an event
            if "error" in answer:
                raise SetupError(f"Chromium refused {method}: {answer['error']}")
            return answer["result"]
        raise SetupError(f"Chromium did not answer {method} in {TIMEOUT} s")

    def _receive(self, deadline):
        while b"\0" not in self.buffer:
            ready, _, _ = select.select(
                [self.answers], [], [], max(0, deadline - time.monotonic())
            )
            chunk = os.read(self.answers, 1 << 20) if ready else b""
            if not chunk:
                raise SetupError("Chromium stopped answering")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def evaluate(self, expression):
        result = self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True
        )
        if "exceptionDetails" in result:
            raise SetupError(f"{expression}: {result['exceptionDetails']['text']}")
        return result["result"].get("value")

    def open(self, url, ready):
        """Go to ``url``; wait until ``ready`` (JavaScript) has held for
        SETTLE seconds, so that late renders and fonts are in."""
        self.send("Page.navigate", url=url)
        self.wait(ready, url)

    def wait(self, ready, what):
        deadline = time.monotonic() + TIMEOUT
        since = None
        while time.monotonic() < deadline:
            try:
                done = self.evaluate(f"!!({ready})")
            except SetupError:
                done = False  # the page is being replaced
            if done:
                since = since or time.monotonic()
                if time.monotonic() - since >= SETTLE:
                    return
            else:
                since = None
            time.sleep(0.1)
        location = self.evaluate("location.href")
        # an error dialog (a broken view, a failed call) says why
        shown = self.evaluate(
            "document.querySelector('.o_error_dialog, .modal-body')?.innerText"
        )
        raise SetupError(
            f"{what} was not ready in {TIMEOUT} s (at {location})"
            + (f": {shown[:500]}" if shown else "")
        )

    def log_in(self, base_url, login, password):
        """Log in through the login form, as a person would."""
        self.open(f"{base_url}/web/session/logout", PORTAL_READY)
        self.open(f"{base_url}/web/login", "!!document.querySelector('.oe_login_form')")
        self.evaluate(
            "(() => { const form = document.querySelector('.oe_login_form');"
            f" form.login.value = {json.dumps(login)};"
            f" form.password.value = {json.dumps(password)};"
            " form.submit(); })()"
        )
        self.wait(
            "document.readyState === 'complete'"
            " && !location.pathname.startsWith('/web/login')",
            f"logging in as {login}",
        )

    def screenshot(self):
        result = self.send("Page.captureScreenshot", format="png")
        return base64.b64decode(result["data"])

    def close(self):
        """Stop Chromium and its renderers; remove its profile."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            kill_group(self.process.pid)
            self.process.wait()
        for fd in (self.commands, self.answers):
            os.close(fd)
        shutil.rmtree(self.profile, ignore_errors=True)


def save_small(png, path):
    """Save ``png`` as a palette PNG, less the empty end of a short page: a
    screen of an Odoo page has few colours, and small files keep the wheel
    small."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    empty = Image.new("RGB", image.size, image.getpixel((0, image.height - 1)))
    content = ImageChops.difference(image, empty).getbbox()
    if content:
        bottom = min(image.height, content[3] + MARGIN)
        image = image.crop((0, 0, image.width, bottom))
    image.quantize(COLOURS, dither=Image.Dither.NONE).save(path, optimize=True)
    return path.stat().st_size


# -- the demo server -----------------------------------------------------------
def demo_ids(odoo, db, names):
    """The ids of emboux_mail's demo records ``names``."""
    listed = ", ".join(f"'{name}'" for name in names)
    rows = odoo.cluster.psql(
        "SELECT name, res_id FROM ir_model_data "
        f"WHERE module = 'emboux_mail' AND name IN ({listed})",
        dbname=db,
    )
    ids = dict(line.split("|") for line in rows.splitlines())
    missing = set(names) - set(ids)
    if missing:
        raise SetupError(f"{db} lacks the demo records {', '.join(sorted(missing))}")
    return ids


def call_api(base_url, token):
    """A few REST calls with the demo customer's token, one answered 404."""
    for path in API_CALLS:
        request = urllib.request.Request(
            base_url + path, headers={"Authorization": f"Bearer {token}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=30):
                pass
        except urllib.error.HTTPError:
            pass  # the unknown mailbox's 404 is a line of the log too


def take(base_url, ids):
    """Take every screenshot; print each file and its size."""
    browser = Browser()
    try:
        user = None
        for shot in shots(ids):
            if shot.user != user:
                browser.log_in(base_url, *shot.user)
                user = shot.user
            browser.open(base_url + shot.path, shot.ready)
            if shot.action:
                browser.evaluate(shot.action)
                browser.wait(shot.ready, shot.path)
            path = REPO / shot.addon / "static" / "description" / shot.name
            size = save_small(browser.screenshot(), path)
            print(f"{path.relative_to(REPO)}: {size // 1024} KB", flush=True)
    finally:
        browser.close()


def main(argv):
    parser = argparse.ArgumentParser(prog="emboux_setup screenshots")
    parser.add_argument("--db", default=DEFAULT_DB, help="the demo database")
    parser.add_argument("--http-port", type=int, default=0, help="default: free")
    args = parser.parse_args(argv)
    try:
        debian.ensure_packages({"chromium": "chromium"})
        odoo = Odoo(find_odoo(), Path(sys.executable), Cluster().start())
        try:
            serve_and_take(odoo, args.db, args.http_port or free_port())
        finally:
            odoo.cluster.stop()
    except SetupError as error:
        print(f"emboux: {error}", file=sys.stderr)
        return 2
    return 0


def serve_and_take(odoo, db, port):
    """Bring ``db`` up to date, serve it on ``port`` and take the shots."""
    odoo.ensure_database(db, demo=True)
    ids = demo_ids(odoo, db, ("domain_northwind_demo", "partner_northwind_demo"))
    _name, token = odoo.demo_api_key(db)
    log = LOG_DIR / f"{db}-screenshots.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            odoo.cmd(
                "-d",
                db,
                f"--db-filter=^{db}$",
                f"--http-port={port}",
                "--max-cron-threads=0",
            ),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        base_url = f"http://127.0.0.1:{port}"
        if not wait_http(f"{base_url}/web/login", server):
            raise SetupError(f"Odoo did not start; its log is {log}.")
        call_api(base_url, token)
        take(base_url, ids)
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            kill_group(server.pid)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
