"""Outbound mail on real parts: mail clients submit over STARTTLS with SASL
(Dovecot checks the password in Odoo's database), the policy service counts
and limits per domain in PostgreSQL, OpenDKIM signs with the domain's key
read from the database, and Postfix relays to a relay host on loopback
whose 550s come back as bounces. Signatures are verified with dkimpy
against the record Knot serves."""

import contextlib
import email.message
import secrets
import smtplib
import ssl
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import dkim
import dns.resolver
import dns_zones
import pytest
from api_client import Api
from emboux_setup.processes import free_port
from mail_stack import MailStack
from rpc import OdooRpc
from smtp_sink import SmtpSink

PASSWORD = "Outbound-pass-2026"
TENANT, OTHER = "out_tenant", "out_other"
LIMIT_TEXT = "Daily sending limit reached"
PAUSED_TEXT = "Sending is paused"


@pytest.fixture(scope="module")
def sink():
    relay = SmtpSink(free_port())
    yield relay
    relay.stop()


@pytest.fixture(scope="module")
def stack(demo_server, cluster, sink):
    mail = MailStack(cluster, demo_server.db, odoo_role="emboux", relay_port=sink.port)
    yield mail
    mail.stop()


@pytest.fixture(scope="module")
def rpc(demo_server):
    return OdooRpc(demo_server.url, demo_server.db)


@pytest.fixture(scope="module")
def tenants(demo_server, master):
    apis = {}
    for ref in (TENANT, OTHER):
        token = "emb_out_" + secrets.token_urlsafe(16)
        body = {"token": token, "partner_ref": ref, "mailboxes_per_domain": 0}
        master.ok("POST", "/api-keys/", body, 201)
        apis[ref] = Api(demo_server.url, token)
    return apis


def hosted(master, tenants, name, *users, ref=TENANT, **outbound):
    """A verified domain of ``ref`` with mailboxes ``users`` (local parts)
    and the sending settings ``outbound`` (set by the master token)."""
    master.ok("POST", "/domains/", {"name": name, "partner_ref": ref}, 201)
    for user in users:
        body = {"domain_name": name, "email": f"{user}@{name}", "password": PASSWORD}
        tenants[ref].ok("POST", "/users/", body, 201)
    if outbound:
        master.ok("PUT", f"/domains/{name}/outbound", outbound)
    return [f"{user}@{name}" for user in users]


def swaks(stack, login, sender, recipient, subject, password=PASSWORD):
    """Submit one message with swaks (STARTTLS, AUTH PLAIN); its exit code
    and transcript."""
    result = subprocess.run(
        [
            "swaks",
            "--server",
            f"127.0.0.1:{stack.submission_port}",
            "--tls",
            "--auth",
            "PLAIN",
            "--auth-user",
            login,
            "--auth-password",
            password,
            "--from",
            sender,
            "--to",
            recipient,
            "--header",
            f"Subject: {subject}",
            "--body",
            "Sent through the submission service.",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.returncode, result.stdout + result.stderr


def wait_relayed(stack, sink, subjects, timeout=120):
    """The messages the relay host got with these subjects, once Postfix's
    queue is empty (whatever was accepted went out)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stack.queue_empty():
            break
        stack.flush()
        time.sleep(0.5)
    else:
        raise AssertionError(f"queue not empty:\n{stack.maillog()[-3000:]}")
    return [message for message in sink.received() if _subject(message[2]) in subjects]


def _subject(raw):
    return email.message_from_bytes(raw)["Subject"]


def _tls():
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the test certificate is self-signed
    return context


class Client:
    """One mail client keeping its session open, as a mail program does:
    it retries what was deferred because sending is paused."""

    def __init__(self, stack, login):
        self.stack, self.login = stack, login
        self.smtp = None

    def _session(self):
        if self.smtp is None:
            smtp = smtplib.SMTP("127.0.0.1", self.stack.submission_port, timeout=60)
            smtp.starttls(context=_tls())
            smtp.login(self.login, PASSWORD)
            self.smtp = smtp
        return self.smtp

    def send(self, recipients, subject):
        """None when accepted, else the final refusal's text."""
        message = email.message.EmailMessage()
        message["From"], message["To"] = self.login, ", ".join(recipients)
        message["Subject"] = subject
        message.set_content("Counted once.")
        for _attempt in range(200):
            try:
                self._session().send_message(message)
                return None
            except smtplib.SMTPRecipientsRefused as refused:
                code, text = next(iter(refused.recipients.values()))
            except smtplib.SMTPDataError as refused:
                code, text = refused.smtp_code, refused.smtp_error
            except (smtplib.SMTPServerDisconnected, ConnectionError):
                self.smtp = None
                time.sleep(0.2)
                continue
            # a mail program ends its session after a refusal (Postfix slows
            # down a session that keeps getting errors)
            self.close()
            text = text.decode(errors="replace")
            if PAUSED_TEXT in text:
                time.sleep(0.2)
                continue
            return f"{code} {text}"
        raise AssertionError(f"{subject}: still paused after 200 attempts")

    def close(self):
        if self.smtp is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self.smtp.quit()
            self.smtp = None


def send_load(stack, login, count, prefix, restart_at=None, clients=8):
    """Send ``count`` messages from ``clients`` concurrent sessions; restart
    the policy service once ``restart_at`` answers came back. Returns
    ``{subject: refusal or None}``."""
    results = {}
    lock = threading.Lock()
    restarted = threading.Event()

    def restart():
        stack.stop_policy()
        time.sleep(1)
        stack.start_policy()

    def worker(numbers):
        client = Client(stack, login)
        try:
            for number in numbers:
                subject = f"{prefix}-{number}"
                outcome = client.send([f"rcpt{number}@remote.test"], subject)
                with lock:
                    results[subject] = outcome
                    due = restart_at and len(results) >= restart_at
                if due and not restarted.is_set():
                    restarted.set()
                    threading.Thread(target=restart).start()
        finally:
            client.close()

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(worker, [range(i, count, clients) for i in range(clients)]))
    if restart_at:
        assert restarted.is_set()
        deadline = time.monotonic() + 30
        while stack.policy is None and time.monotonic() < deadline:
            time.sleep(0.2)
    return results


def knot_txt(dns_server):
    """dkimpy's DNS lookup, answered by Knot."""
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers, resolver.port = ["127.0.0.1"], dns_server.port

    def lookup(name, timeout=5):
        answer = resolver.resolve(name.decode().rstrip("."), "TXT", lifetime=timeout)
        return b"".join(b"".join(record.strings) for record in answer)

    return lookup


def test_submission_signs_with_the_key_knot_serves(
    stack, sink, master, tenants, rpc, dns_server
):
    """swaks submits over STARTTLS with SASL; the relay host gets the mail
    signed with the domain's own key, which verifies against the record
    published from the form; Odoo's DNS check then sees it published."""
    name = f"signed.{dns_zones.ZONE}"
    (ann,) = hosted(master, tenants, name, "ann")
    # the record to publish exists from the first look at the domain's DNS
    master.ok("GET", f"/domains/{name}/dns-check")
    [domain] = rpc.call(
        "emboux.mail.domain",
        "search_read",
        [("name", "=", name)],
        ["dkim_record_name", "dkim_record_value", "ses_verified"],
    )
    assert domain["dkim_record_name"] == f"emboux._domainkey.{name}"
    assert domain["dkim_record_value"].startswith("v=DKIM1; k=rsa; p=MIIB")
    assert domain["ses_verified"] is False
    dns_server.update(
        dns_zones.ZONE,
        dns_zones.ZONE_RECORDS
        + f"signed MX 10 {dns_zones.MX}.\n"
        + f'signed TXT "v=spf1 {dns_zones.SPF} ~all"\n'
        + dns_zones.dkim_line("signed", domain["dkim_record_value"])
        + '_dmarc.signed TXT "v=DMARC1; p=reject"\n',
    )
    try:
        code, transcript = swaks(stack, ann, ann, "carol@remote.test", "signed-1")
        assert code == 0, transcript
        [(sender, recipients, raw)] = wait_relayed(stack, sink, {"signed-1"})
        assert (sender, recipients) == (ann, ["carol@remote.test"])
        signature = email.message_from_bytes(raw)["DKIM-Signature"]
        assert f"d={name}" in signature and "s=emboux" in signature
        assert dkim.verify(raw, dnsfunc=knot_txt(dns_server))
        # altered on the way, it no longer verifies
        assert not dkim.verify(
            raw.replace(b"submission service", b"submission servicE"),
            dnsfunc=knot_txt(dns_server),
        )
        dns_zones.use_test_zones(rpc, dns_server)
        rpc.call("emboux.mail.domain", "action_check_dns", [domain["id"]])
        [checked] = rpc.call(
            "emboux.mail.domain", "read", [domain["id"]], ["ses_verified", "dns_state"]
        )
        assert (checked["ses_verified"], checked["dns_state"]) == (True, "ok")
        check = master.ok("GET", f"/domains/{name}/dns-check")
        assert check["all_ok"] is True
    finally:
        dns_server.update(dns_zones.ZONE, dns_zones.ZONE_RECORDS)


def test_subdomain_signs_as_its_wildcard_parent(stack, sink, master, tenants):
    """A subdomain of a wildcard signs with its parent's identity (d= the
    parent), as register-subdomain documents."""
    hosted(master, tenants, "parent-sign.example")
    master.ok("PUT", "/domains/parent-sign.example/parent", {"is_wildcard": True})
    (bea,) = hosted(master, tenants, "team.parent-sign.example", "bea")
    master.ok("GET", "/domains/parent-sign.example/dns-check")
    code, transcript = swaks(stack, bea, bea, "dan@remote.test", "sub-signed")
    assert code == 0, transcript
    [(_sender, _rcpts, raw)] = wait_relayed(stack, sink, {"sub-signed"})
    signature = email.message_from_bytes(raw)["DKIM-Signature"]
    assert "d=parent-sign.example" in signature


def test_forgery_suspension_and_verification_are_refused(stack, sink, master, tenants):
    """Nobody sends as an address it does not own, nor from a suspended or
    unverified domain; each refusal says why."""
    (eve,) = hosted(master, tenants, "forger.example", "eve", ref=OTHER)
    (ann,) = hosted(master, tenants, "victim.example", "ann")
    code, transcript = swaks(stack, eve, ann, "x@remote.test", "forged")
    assert code != 0
    assert "Sender address rejected: not owned by user " + eve in transcript

    # an alias of its own tenant is fine; one pointing at it from another
    # tenant's domain is not
    tenants[TENANT].ok(
        "POST",
        "/aliases/",
        {
            "domain_name": "victim.example",
            "source": "sales@victim.example",
            "destination": ann,
        },
        201,
    )
    code, transcript = swaks(
        stack, ann, "sales@victim.example", "x@remote.test", "alias"
    )
    assert code == 0, transcript
    code, transcript = swaks(
        stack, eve, "sales@victim.example", "x@remote.test", "alias2"
    )
    assert "not owned by user" in transcript and code != 0

    master.ok("PUT", "/domains/forger.example/suspend")
    code, transcript = swaks(stack, eve, eve, "x@remote.test", "suspended")
    assert code != 0
    assert "554 5.7.1" in transcript
    assert "Domain suspended: forger.example cannot send mail" in transcript

    # a domain its tenant added itself waits for its proof
    tenants[TENANT].ok("POST", "/domains/", {"name": "pending-send.example"}, 201)
    body = {
        "domain_name": "pending-send.example",
        "email": "new@pending-send.example",
        "password": PASSWORD,
    }
    tenants[TENANT].ok("POST", "/users/", body, 201)
    code, transcript = swaks(
        stack,
        "new@pending-send.example",
        "new@pending-send.example",
        "x@remote.test",
        "unverified",
    )
    assert code != 0
    assert "Domain not verified: pending-send.example" in transcript
    relayed = wait_relayed(stack, sink, {"forged", "alias2", "suspended", "unverified"})
    assert relayed == []
    assert len(wait_relayed(stack, sink, {"alias"})) == 1


def test_hard_limit_under_load_with_a_restart(stack, sink, master, tenants):
    """8 clients send 1,000 messages for a domain limited to 100 a day while
    the policy service restarts: exactly 100 go out and are counted; every
    other message is refused with the limit's text."""
    (ann,) = hosted(
        master,
        tenants,
        "hard.example",
        "ann",
        outbound_daily_limit=100,
        outbound_enforcement="hard",
    )
    results = send_load(stack, ann, 1000, "hard", restart_at=50)
    accepted = sorted(s for s, outcome in results.items() if outcome is None)
    refused = [outcome for outcome in results.values() if outcome is not None]
    assert (len(results), len(accepted), len(refused)) == (1000, 100, 900)
    assert all(
        outcome.startswith("450 ") and f"{LIMIT_TEXT} for hard.example (100" in outcome
        for outcome in refused
    ), refused[:3]
    relayed = wait_relayed(stack, sink, set(results))
    assert sorted(_subject(raw) for *_x, raw in relayed) == accepted
    figures = master.ok("GET", "/domains/hard.example/outbound")
    assert (figures["outbound_sent_today"], figures["outbound_sent_month"]) == (
        100,
        100,
    )


def test_soft_limit_sends_all_and_records_the_overage(
    stack, sink, master, tenants, rpc
):
    """Soft enforcement relays all 1,000 and records 900 over the limit,
    across a restart of the policy service; a message to five recipients
    counts once."""
    (bob,) = hosted(
        master,
        tenants,
        "soft.example",
        "bob",
        outbound_daily_limit=100,
        outbound_enforcement="soft",
    )
    results = send_load(stack, bob, 999, "soft", restart_at=400)
    assert [subject for subject, outcome in results.items() if outcome] == []
    client = Client(stack, bob)
    five = [f"team{i}@remote.test" for i in range(5)]
    assert client.send(five, "soft-five") is None
    client.close()
    relayed = wait_relayed(stack, sink, {*results, "soft-five"})
    assert len(relayed) == 1000
    assert {_subject(raw) for *_x, raw in relayed} == {*results, "soft-five"}
    [domain] = rpc.call(
        "emboux.mail.domain",
        "search_read",
        [("name", "=", "soft.example")],
        ["outbound_sent_today", "outbound_sent_month", "outbound_over_month"],
    )
    assert (
        domain["outbound_sent_today"],
        domain["outbound_sent_month"],
        domain["outbound_over_month"],
    ) == (1000, 1000, 900)


def test_bounce_guard_suspends_outbound(stack, sink, master, tenants, rpc):
    """Recipients the relay host refuses with 550 count as bounces; past 3%
    over the minimum volume the domain stops sending, and the operator finds
    it suspended with a note and an activity."""
    rpc.call("ir.config_parameter", "set_param", "emboux_mail.bounce_min_volume", "40")
    try:
        (cat,) = hosted(master, tenants, "bouncy.example", "cat")
        sink.refused_prefix = "nobody"
        client = Client(stack, cat)
        for number in range(39):
            assert (
                client.send([f"rcpt{number}@remote.test"], f"bounce-ok-{number}")
                is None
            )
        wait_relayed(stack, sink, {f"bounce-ok-{n}" for n in range(39)})
        figures = _wait_figures(master, "bouncy.example", bounce_count=0)
        assert figures["bounce_rate"] == 0
        assert client.send(["nobody1@remote.test"], "bounce-bad-1") is None
        wait_relayed(stack, sink, set())
        figures = _wait_figures(master, "bouncy.example", bounce_count=1)
        assert figures["bounce_rate"] == 2.5  # 1 of 40: under 3%
        assert client.send(["nobody2@remote.test"], "bounce-bad-2") is None
        wait_relayed(stack, sink, set())
        figures = _wait_figures(master, "bouncy.example", bounce_count=2)
        assert figures["bounce_rate"] == pytest.approx(4.88, abs=0.01)  # 2 of 41
        refusal = client.send(["rcpt99@remote.test"], "bounce-after")
        assert (
            refusal.startswith("554 ")
            and "Outbound mail suspended for bouncy.example" in refusal
        )
        client.close()
        rpc.run_cron("emboux_mail", "ir_cron_emboux_mail_bounce_guard")
        [domain] = rpc.call(
            "emboux.mail.domain",
            "search_read",
            [("name", "=", "bouncy.example")],
            ["outbound_status", "activity_ids", "message_ids"],
        )
        assert domain["outbound_status"] == "suspended"
        assert len(domain["activity_ids"]) == 1
        notes = rpc.call("mail.message", "read", domain["message_ids"], ["body"])
        assert any("bounce guard" in note["body"] for note in notes)
        assert (
            master.ok("GET", "/domains/bouncy.example/outbound")["outbound_status"]
            == "suspended"
        )
    finally:
        sink.refused_prefix = None
        rpc.call(
            "ir.config_parameter", "set_param", "emboux_mail.bounce_min_volume", "100"
        )


def _wait_figures(master, name, timeout=60, **expected):
    """The domain's outbound figures once the delivery results are in."""
    deadline = time.monotonic() + timeout
    while True:
        figures = master.ok("GET", f"/domains/{name}/outbound")
        if all(figures[key] == value for key, value in expected.items()):
            return figures
        if time.monotonic() > deadline:
            raise AssertionError(figures)
        time.sleep(0.5)
