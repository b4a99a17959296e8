"""Storage use and retention on a real Dovecot: what each mailbox uses
reaches Odoo's database as Dovecot counts it, customers are warned once per
crossing of 80% and 95%, and the daily retention job deletes exactly the
mail older than each domain keeps."""

import email.message
import imaplib
import math
import os
import re
import secrets
import shlex
import smtplib
import subprocess
import sys
import time
from pathlib import Path

import pytest
from api_client import Api
from emboux_setup.cli import LIBFAKETIME
from rpc import OdooRpc

TENANT_REF = "storage_tenant"
PASSWORD = "Storage-pass-4711"
DAY = 86400


@pytest.fixture(scope="module")
def tenant(demo_server, master):
    token = "emb_store_" + secrets.token_urlsafe(16)
    body = {"token": token, "partner_ref": TENANT_REF, "mailboxes_per_domain": 0}
    master.ok("POST", "/api-keys/", body, 201)
    for name in ("keep.example", "short.example", "long.example"):
        master.ok("POST", "/domains/", {"name": name, "partner_ref": TENANT_REF}, 201)
    return Api(demo_server.url, token)


@pytest.fixture(scope="module")
def rpc(demo_server):
    return OdooRpc(demo_server.url, demo_server.db)


@pytest.fixture(scope="module")
def usage_db(stack):
    """The usage table, read as the mail servers' role reads it."""
    connection = stack.mail_role_connection()
    yield connection
    connection.close()


def add_mailbox(tenant, address, quota_mb=None):
    domain = address.split("@")[1]
    body = {"domain_name": domain, "email": address, "password": PASSWORD}
    tenant.ok("POST", "/users/", body, 201)
    if quota_mb is not None:
        tenant.ok("PUT", f"/users/{address}/quota", {"quota_mb": quota_mb})


def deliver(stack, address, subject, size=1000):
    """One message straight to Dovecot's LMTP, as Postfix delivers."""
    message = email.message.EmailMessage()
    message["From"], message["To"] = "sender@outside.test", address
    message["Subject"] = subject
    message["Message-ID"] = f"<{secrets.token_hex(8)}@emboux.test>"
    # short lines: stored as they are, so ``size`` is about what it weighs
    message.set_content(("x" * 69 + "\n") * (size // 70))
    with smtplib.LMTP("127.0.0.1", stack.lmtp_port) as lmtp:
        lmtp.send_message(message)


def doveadm(stack, *args):
    result = subprocess.run(
        ["doveadm", "-c", str(stack.dovecot_conf), *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def dovecot_quota(stack, address):
    """``(KiB, messages)`` as ``doveadm quota get`` reports them."""
    rows = doveadm(stack, "-f", "tab", "quota", "get", "-u", address).splitlines()
    values = {}
    for row in rows[1:]:
        _name, kind, value, *_rest = row.split("\t")
        values[kind] = int(value)
    return values["STORAGE"], values["MESSAGE"]


def usage_row(usage_db, address):
    with usage_db.cursor() as cr:
        cr.execute(
            "SELECT bytes, messages FROM emboux_mail_mailbox_usage WHERE email = %s",
            (address,),
        )
        return cr.fetchone()


def wait_usage(usage_db, address, messages, timeout=30):
    """The usage row once it counts ``messages`` (Dovecot copies it at the
    end of each transaction)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = usage_row(usage_db, address)
        if row and row[1] == messages:
            return row
        time.sleep(0.2)
    raise AssertionError(f"{address}: usage {usage_row(usage_db, address)}")


def assert_matches_dovecot(stack, tenant, usage_db, address, messages):
    used, count = wait_usage(usage_db, address, messages)
    kib, dovecot_count = dovecot_quota(stack, address)
    assert count == dovecot_count == messages
    assert math.ceil(used / 1024) == kib
    answer = tenant.ok("GET", f"/users/{address}/quota")
    assert answer["used_mb"] == round(used / 1024 / 1024, 2)
    return used


def imap_subjects(stack, address, folder="INBOX"):
    with imaplib.IMAP4("127.0.0.1", stack.imap_port) as imap:
        imap.login(address, PASSWORD)
        imap.select(folder, readonly=True)
        _status, data = imap.search(None, "ALL")
        subjects = []
        for number in data[0].split():
            _status, parts = imap.fetch(number, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            subjects.append(parts[0][1].decode().split(":", 1)[1].strip())
    return sorted(subjects)


def run_a_day_on(command, offset):
    """Run ``command`` with its clock ``offset`` seconds on.

    libfaketime keeps a semaphore and a shared memory object named by each
    process's pid in /dev/shm, and processes that clear their environment
    (doveadm) leave theirs behind; those that appear are removed, so that no
    later process given the same pid meets them.
    """
    shm = Path("/dev/shm")
    before = set(shm.glob("*faketime_*"))
    try:
        return subprocess.run(
            command,
            capture_output=True,
            text=True,
            check=False,
            env=dict(
                os.environ,
                LD_PRELOAD=LIBFAKETIME,
                FAKETIME=f"+{offset}",
                # doveadm clears its environment, the fake clock's included
                DOVECOT_PRESERVE_ENVS="LD_PRELOAD FAKETIME",
            ),
        )
    finally:
        for left in set(shm.glob("*faketime_*")) - before:
            left.unlink(missing_ok=True)


def test_usage_follows_dovecot(stack, tenant, usage_db):
    address = "count@keep.example"
    add_mailbox(tenant, address)
    for number in range(3):
        deliver(stack, address, f"usage {number}", size=20_000 * (number + 1))
    used = assert_matches_dovecot(stack, tenant, usage_db, address, 3)
    assert used > 120_000
    # deleting through IMAP lowers it again
    with imaplib.IMAP4("127.0.0.1", stack.imap_port) as imap:
        imap.login(address, PASSWORD)
        imap.select("INBOX")
        imap.store("1:2", "+FLAGS", "\\Deleted")
        imap.expunge()
    smaller = assert_matches_dovecot(stack, tenant, usage_db, address, 1)
    assert smaller < used


def _warnings(rpc, address):
    [mailbox] = rpc.call(
        "emboux.mail.mailbox", "search_read", [("email", "=", address)], ["id"]
    )
    return rpc.call(
        "mail.message",
        "search_read",
        [
            ("model", "=", "emboux.mail.mailbox"),
            ("res_id", "=", mailbox["id"]),
            ("subject", "=", f"Your mailbox {address} is nearly full"),
        ],
        ["partner_ids", "body"],
    )


def test_one_warning_per_crossing(stack, tenant, usage_db, rpc):
    address = "full@keep.example"
    add_mailbox(tenant, address, quota_mb=1)
    [customer] = rpc.call(
        "res.partner", "search_read", [("emboux_partner_ref", "=", TENANT_REF)], []
    )
    steps = (
        # (message size, warnings after it)
        (500_000, 0),  # about 48%
        (360_000, 1),  # about 82%: crosses 80%
        (60_000, 1),  # about 88%: still between, nothing new
        (90_000, 2),  # about 97%: crosses 95%
    )
    for number, (size, expected) in enumerate(steps, start=1):
        deliver(stack, address, f"fill {number}", size=size)
        used = assert_matches_dovecot(stack, tenant, usage_db, address, number)
        rpc.run_cron("emboux_mail", "ir_cron_mailbox_usage_warnings")
        warnings = _warnings(rpc, address)
        assert len(warnings) == expected, (used, warnings)
    for warning in warnings:
        assert warning["partner_ids"] == [customer["id"]]
        assert address in warning["body"]
    # the mailbox list shows who is nearly full
    near = rpc.call(
        "emboux.mail.mailbox", "search_read", [("used_percent", ">=", 95)], ["email"]
    )
    assert address in [row["email"] for row in near]


def test_retention_deletes_exactly_the_old_mail(stack, master, tenant, usage_db):
    old, young = "old@short.example", "other@long.example"
    for address in (old, young, "kept@keep.example"):
        add_mailbox(tenant, address)
    master.ok("PUT", "/domains/short.example/retention", {"retention_days": 1})
    master.ok("PUT", "/domains/long.example/retention", {"retention_days": 2})
    with imaplib.IMAP4("127.0.0.1", stack.imap_port) as imap:
        imap.login(old, PASSWORD)
        imap.create("Archive")
        imap.append("Archive", None, None, b"Subject: early 2\r\n\r\nfiled\r\n")
    for address in (old, young, "kept@keep.example"):
        deliver(stack, address, "early")
    time.sleep(3)
    cut = time.time()
    time.sleep(3)
    deliver(stack, old, "late")
    deliver(stack, young, "late")
    wait_usage(usage_db, old, 3)
    # the job the generated cron line runs, with its clock one day on: the
    # early mail is then older than the one day short.example keeps it
    cron = (stack.dir / "retention" / "emboux-mail-retention.cron").read_text()
    *_schedule, user, command = cron.split(None, 6)
    assert user == "root"
    assert (stack.dir / "retention" / "emboux-mail-retention.timer").exists()
    offset = round(cut + DAY - time.time())
    job = run_a_day_on(shlex.split(command), offset)
    assert job.returncode == 0, job.stderr
    log = job.stderr
    assert re.search(
        r"short\.example: deleted 2 messages older than 1 days from 1 mailboxes", log
    ), log
    assert re.search(r"long\.example: deleted 0 messages older than 2 days", log), log
    assert "keep.example" not in log  # keeps its mail forever
    assert imap_subjects(stack, old) == ["late"]
    assert imap_subjects(stack, old, "Archive") == []
    assert imap_subjects(stack, young) == ["early", "late"]
    assert imap_subjects(stack, "kept@keep.example") == ["early"]
    assert_matches_dovecot(stack, tenant, usage_db, old, 1)


def test_retention_job_is_generated(stack):
    folder = stack.dir / "retention"
    timer = (folder / "emboux-mail-retention.timer").read_text()
    service = (folder / "emboux-mail-retention.service").read_text()
    assert "OnCalendar=*-*-* 03:17:00" in timer
    assert f"ExecStart={sys.executable} " in service
    assert (folder / "retention.dsn").stat().st_mode & 0o777 == 0o640
