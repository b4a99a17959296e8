"""The outbound policy daemon (``emboux_mail_api/services/policyd.py``) as
Postfix uses it: a real process speaking the policy delegation protocol,
counting in the database of the shared ``./setup/run`` server through a role
that may only call the policy functions.

The domains are rows inserted in SQL (the policy functions read nothing
else), each with a name of its own, so the tests neither see nor touch the
demo data.
"""

import contextlib
import json
import os
import secrets
import signal
import socket
import stat
import subprocess
import sys
import threading
import time

import psycopg2
import pytest
from conftest import REPO
from emboux_setup.processes import free_port

SERVICES = REPO / "emboux_mail_api" / "services"
sys.path.insert(0, str(SERVICES))

import mailserver  # noqa: E402
import policyd  # noqa: E402

DAEMON = SERVICES / "policyd.py"
ROLE = "emboux_policyd_test"
RUN = secrets.token_hex(3)  # makes this run's domains and queue ids unique
UNAVAILABLE_PREFIX = "451 4.3.0 "


# -- the database -----------------------------------------------------------------
class PolicyDatabase:
    """The installed database, a DSN of the policy role, and helpers that
    read and write it as Odoo's own role."""

    def __init__(self, cluster, dbname, tmp_path):
        self.dbname = dbname
        self.port = cluster.port
        password = secrets.token_hex(12)
        cluster.psql(mailserver.policy_role_sql(ROLE, password, dbname), dbname=dbname)
        self.dsn = (
            f"host=127.0.0.1 port={cluster.port} dbname={dbname} "
            f"user={ROLE} password={password}"
        )
        self.dsn_file = tmp_path / "policyd.dsn"
        self.dsn_file.write_text(self.dsn + "\n")
        self.dsn_file.chmod(0o600)
        args = cluster.dsn_args
        self.conn = psycopg2.connect(
            host=args["db_host"],
            port=args["db_port"],
            user=args["db_user"],
            dbname=dbname,
        )
        self.conn.autocommit = True

    def query(self, sql, params=()):
        with self.conn.cursor() as cr:
            cr.execute(sql, params)
            return cr.fetchall() if cr.description else None

    def domain(self, label, daily=0, monthly=0, transfer_mb=0, enforcement="hard"):
        """A verified domain of its own for this run; returns its name."""
        name = f"pd-{RUN}-{label}.example"
        self.query(
            """
            INSERT INTO emboux_mail_domain (
                name, company_id, dns_state, outbound_tier, outbound_status,
                outbound_enforcement, verified, suspended, outbound_daily_limit,
                outbound_monthly_limit, transfer_monthly_mb)
            VALUES (%s, (SELECT min(id) FROM res_company), 'unchecked', 'shared',
                    'active', %s, true, false, %s, %s, %s)
            """,
            (name, enforcement, daily, monthly, transfer_mb),
        )
        return name

    def counter(self, name):
        """The domain's outbound counter, zeros before its first message."""
        fields = (
            "sent_today",
            "sent_month",
            "refused_today",
            "recipients_month",
            "delivered_count",
            "bounce_count",
        )
        rows = self.query(
            f"SELECT {', '.join('c.' + field for field in fields)} "
            "FROM emboux_mail_outbound_counter c "
            "JOIN emboux_mail_domain d ON d.id = c.domain_id WHERE d.name = %s",
            (name,),
        )
        return dict(zip(fields, rows[0] if rows else (0,) * len(fields), strict=True))

    def messages(self, prefix):
        """The queue ids starting with ``prefix`` the policy counted or refused."""
        rows = self.query(
            "SELECT queue_id FROM emboux_mailserver.outbound_message "
            "WHERE queue_id LIKE %s",
            (prefix + "%",),
        )
        return sorted(row[0] for row in rows)

    def close(self, cluster):
        self.conn.close()
        # the role is the cluster's, not the database's: leave no trace
        cluster.psql(f"DROP OWNED BY {ROLE}", dbname=self.dbname, check=False)
        cluster.psql(f"DROP ROLE IF EXISTS {ROLE}", check=False)


@pytest.fixture(scope="module")
def db(cluster, demo_server, tmp_path_factory):
    database = PolicyDatabase(
        cluster, demo_server.db, tmp_path_factory.mktemp("policyd")
    )
    yield database
    database.close(cluster)


# -- the daemon -------------------------------------------------------------------
class Daemon:
    """One policyd process; its log in ``log_path``."""

    def __init__(self, tmp_path, dsn_file, listen=None, args=(), name="policyd"):
        self.listen = listen or f"127.0.0.1:{free_port()}"
        self.log_path = tmp_path / f"{name}-{secrets.token_hex(3)}.log"
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(DAEMON),
                "--listen",
                self.listen,
                "--dsn-file",
                str(dsn_file),
                "--verbose",
                *args,
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._wait_listening()

    def _wait_listening(self, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "listening on" in self.output():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"policyd did not start:\n{self.output()}")

    def output(self):
        return self.log_path.read_text()

    def connect(self):
        return Client(self.listen)

    def terminate(self):
        self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout=20):
        """SIGTERM, and check that it stopped cleanly: exit status 0, no
        traceback in its log."""
        if self.process.poll() is None:
            self.terminate()
        try:
            status = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"policyd ignored SIGTERM:\n{self.output()}") from None
        finally:
            self._log.close()
        assert status == 0, f"policyd exited with {status}:\n{self.output()}"
        assert "Traceback" not in self.output(), self.output()


@pytest.fixture
def daemons(tmp_path, db):
    """Factory: start a daemon; every one left running is stopped at the end."""
    started = []

    def start(listen=None, args=(), dsn_file=None, name="policyd"):
        daemon = Daemon(tmp_path, dsn_file or db.dsn_file, listen, args, name)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        if daemon.process.poll() is None:
            daemon.stop()


def _socket_for(listen):
    if listen.startswith("unix:"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(listen[len("unix:") :])
        return sock
    host, _sep, port = listen.rpartition(":")
    return socket.create_connection((host, int(port)), timeout=10)


def encode(attributes):
    lines = "".join(f"{name}={value}\n" for name, value in attributes.items())
    return (lines + "\n").encode()


class Client:
    """A Postfix-like client on one persistent connection."""

    def __init__(self, listen):
        self.sock = _socket_for(listen)
        self.sock.settimeout(10)
        self.buffer = b""

    def send(self, data):
        self.sock.sendall(data)

    def answer(self):
        """The next answer's action; ConnectionError when the server closed."""
        while b"\n\n" not in self.buffer:
            data = self.sock.recv(4096)
            if not data:
                raise ConnectionError("the policy server closed the connection")
            self.buffer += data
        raw, self.buffer = self.buffer.split(b"\n\n", 1)
        name, _sep, action = raw.decode().partition("=")
        assert name == "action", raw
        return action

    def ask(self, **attributes):
        self.send(encode(attributes))
        return self.answer()

    def close(self):
        self.sock.close()


def request(
    state, sender, queue_id="", recipients=0, size=1000, login=None, instance=None
):
    """The attributes Postfix sends for an authenticated submission; each
    SMTP transaction has an ``instance`` of its own (a new one by default)."""
    return {
        "request": "smtpd_access_policy",
        "protocol_state": state,
        "protocol_name": "ESMTP",
        "helo_name": "laptop.example.net",
        "queue_id": queue_id,
        "sender": sender,
        "recipient": "friend@example.net" if state == "RCPT" else "",
        "recipient_count": recipients,
        "client_address": "192.0.2.10",
        "client_name": "unknown",
        "instance": instance or f"{secrets.token_hex(2)}.{secrets.token_hex(4)}.0",
        "sasl_method": "PLAIN",
        "sasl_username": sender if login is None else login,
        "sasl_sender": "",
        "size": size,
        "policy_context": "",
    }


# -- log parsing --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "Nov 30 02:20:30 mx postfix/smtp[123]: 4XyZ1abcD: to=<rcpt@example.net>, "
            "relay=mx.example.net[192.0.2.1]:25, delay=1.2, delays=0.1/0/0.5/0.6, "
            "dsn=5.1.1, status=bounced (host said: 550 5.1.1 no such user)",
            ("4XyZ1abcD", "rcpt@example.net", "bounced"),
        ),
        (
            "2026-11-30T02:20:30.123456+00:00 mx postfix-submission/smtp[9]: "
            "4ZkQ3Y0Wxbz9vTt: to=<a@example.org>, orig_to=<b@example.org>, "
            "relay=mx[192.0.2.2]:25, delay=0.3, dsn=2.0.0, status=sent (250 Ok)",
            ("4ZkQ3Y0Wxbz9vTt", "a@example.org", "sent"),
        ),
        (
            "Nov 30 02:20:30 mx postfix/lmtp[77]: ABCDEF012: to=<box@hosted.example>, "
            "relay=127.0.0.1[127.0.0.1]:24, dsn=2.0.0, status=sent (250 2.0.0 Saved)",
            ("ABCDEF012", "box@hosted.example", "sent"),
        ),
        (
            "Nov 30 02:20:30 mx postfix/relay/smtp[5]: 1A2B3C: to=<x@example.com>, "
            "relay=none, delay=0, dsn=5.4.4, status=bounced (Host not found)",
            ("1A2B3C", "x@example.com", "bounced"),
        ),
        (
            "Nov 30 02:20:30 mx postfix/error[8]: 1A2B3D: to=<y@example.com>, "
            "relay=none, delay=0, dsn=5.0.0, status=bounced (refused)",
            ("1A2B3D", "y@example.com", "bounced"),
        ),
        (
            "Nov 30 02:20:30 mx postfix/smtp[123]: 4XyZ1abcD: to=<rcpt@example.net>, "
            "relay=none, delay=30, dsn=4.4.1, status=deferred (connect timed out)",
            None,
        ),
        (
            "Nov 30 02:20:30 mx postfix/qmgr[2]: 4XyZ1abcD: from=<a@example.org>, "
            "status=expired, returned to sender",
            None,
        ),
        (
            "Nov 30 02:20:30 mx postfix/smtpd[3]: 4XyZ1abcD: "
            "client=laptop[192.0.2.10], sasl_method=PLAIN, sasl_username=a@example.org",
            None,
        ),
    ],
)
def test_parse_delivery(line, expected):
    assert policyd.parse_delivery(line) == expected


# -- the protocol -----------------------------------------------------------------
def test_protocol_several_requests_partial_reads(db, daemons):
    sender = f"ann@{db.domain('protocol')}"
    daemon = daemons()
    client = daemon.connect()
    # one request in pieces, cut inside a name and inside the final empty line
    data = encode(request("RCPT", sender))
    for piece in (data[:7], data[7:40], data[40:-1], data[-1:]):
        client.send(piece)
        time.sleep(0.05)
    assert client.answer() == "DUNNO"
    # two requests in one write, then one with CRLF line ends and an
    # attribute the daemon does not know
    client.send(encode(request("RCPT", sender)) + encode(request("DATA", sender)))
    assert client.answer() == "DUNNO"
    assert client.answer() == "DUNNO"
    unknown = {**request("RCPT", "x@unknown.example"), "future_attribute": "1"}
    client.send(encode(unknown).replace(b"\n", b"\r\n"))
    assert client.answer() == "554 5.7.1 Sender domain is not hosted here"
    # not an authenticated submission: not this policy's business
    assert client.ask(**request("RCPT", "x@unknown.example", login="")) == "DUNNO"
    # the same connection is still served, and nothing was counted
    assert client.ask(**request("RCPT", sender)) == "DUNNO"
    assert db.counter(sender.split("@")[1])["sent_month"] == 0
    client.close()
    daemon.stop()


def test_rcpt_refused_once_the_hard_limit_is_reached(db, daemons):
    domain = db.domain("limit", daily=2)
    sender = f"bob@{domain}"
    client, late = daemons().connect(), daemons().connect()
    # a transaction begun before the limit: its RCPT verdict serves its
    # next recipients; its END-OF-MESSAGE is refused, it would be one too many
    open_transaction = request("RCPT", sender, instance=f"late.{RUN}.0")
    assert late.ask(**open_transaction) == "DUNNO"
    for number in (1, 2):
        transaction = f"lim.{RUN}.{number}"
        assert client.ask(**request("RCPT", sender, instance=transaction)) == "DUNNO"
        assert client.ask(**request("RCPT", sender, instance=transaction)) == "DUNNO"
        end = request(
            "END-OF-MESSAGE", sender, f"L{RUN}{number}", 2, instance=transaction
        )
        assert client.ask(**end) == "DUNNO"
    refusal = f"450 4.7.1 Daily sending limit reached for {domain} (2 messages)"
    assert client.ask(**request("RCPT", sender)) == refusal
    assert late.ask(**open_transaction) == "DUNNO"
    end = {**open_transaction, "protocol_state": "END-OF-MESSAGE", "recipient": ""}
    end.update(queue_id=f"L{RUN}3", recipient_count=2)
    assert late.ask(**end) == refusal
    counter = db.counter(domain)
    assert (counter["sent_today"], counter["refused_today"]) == (2, 1)


def test_end_of_message_counts_once_per_message_and_queue_id(db, daemons):
    domain = db.domain("count")
    sender = f"cid@{domain}"
    client = daemons().connect()
    for _recipient in range(5):
        assert client.ask(**request("RCPT", sender)) == "DUNNO"
    queue_id = f"C{RUN}1"
    end = request("END-OF-MESSAGE", sender, queue_id, recipients=5, size=4096)
    assert client.ask(**end) == "DUNNO"
    counter = db.counter(domain)
    assert (counter["sent_month"], counter["recipients_month"]) == (1, 5)
    # Postfix repeats a request whose answer it lost, maybe on a new
    # connection: the same queue id counts nothing more
    assert client.ask(**end) == "DUNNO"
    other = daemons().connect()
    assert other.ask(**end) == "DUNNO"
    counter = db.counter(domain)
    assert (counter["sent_month"], counter["recipients_month"]) == (1, 5)
    assert db.messages(f"C{RUN}") == [queue_id]


# -- the database going away ------------------------------------------------------
class Relay:
    """A TCP relay to PostgreSQL that can be cut: while down, it closes
    every connection, open or new, as a database that went away."""

    def __init__(self, port):
        self.target = ("127.0.0.1", port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.down = False
        self.lock = threading.Lock()
        self.sockets = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _address = self.listener.accept()
            except OSError:
                return
            if self.down:
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.sockets += [client, upstream]
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(
                    target=self._pump, args=(source, target), daemon=True
                ).start()

    @staticmethod
    def _pump(source, target):
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                target.sendall(data)
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def cut(self):
        self.down = True
        with self.lock:
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            self.sockets = []

    def restore(self):
        self.down = False

    def close(self):
        self.cut()
        self.listener.close()


def test_database_down_answers_451_and_reconnects(db, daemons, tmp_path):
    domain = db.domain("down")
    sender = f"dan@{domain}"
    relay = Relay(db.port)
    try:
        dsn_file = tmp_path / "relay.dsn"
        dsn_file.write_text(db.dsn.replace(f"port={db.port}", f"port={relay.port}"))
        dsn_file.chmod(0o600)
        # every RCPT asks the database (no verdict kept from the last one)
        daemon = daemons(dsn_file=dsn_file, args=["--verdict-cache", "0"])
        client = daemon.connect()
        assert client.ask(**request("RCPT", sender)) == "DUNNO"
        relay.cut()
        # the pooled connection is dead and no new one gets through
        queue_id = f"D{RUN}1"
        answers = [
            client.ask(**request("RCPT", sender)),
            client.ask(**request("END-OF-MESSAGE", sender, queue_id, 1)),
        ]
        assert all(answer.startswith(UNAVAILABLE_PREFIX) for answer in answers)
        assert "policy" in answers[0] and "unavailable" in answers[0]
        assert daemon.process.poll() is None
        assert db.counter(domain)["sent_month"] == 0
        relay.restore()
        # the next request connects again: nothing was counted twice
        assert client.ask(**request("END-OF-MESSAGE", sender, queue_id, 1)) == "DUNNO"
        assert client.ask(**request("END-OF-MESSAGE", sender, queue_id, 1)) == "DUNNO"
        assert db.counter(domain)["sent_month"] == 1
        assert "cannot connect to the database" in daemon.output()
        daemon.stop()
    finally:
        relay.close()


def test_the_last_verdict_answers_the_next_rcpt(db, daemons, tmp_path):
    """The verdict on a domain's next message that its count gave answers
    the next RCPT without the database; the count itself always asks."""
    domain = db.domain("next", daily=1)
    sender = f"nia@{domain}"
    relay = Relay(db.port)
    try:
        dsn_file = tmp_path / "relay.dsn"
        dsn_file.write_text(db.dsn.replace(f"port={db.port}", f"port={relay.port}"))
        dsn_file.chmod(0o600)
        client = daemons(dsn_file=dsn_file).connect()
        end = request("END-OF-MESSAGE", sender, f"N{RUN}1", 1)
        assert client.ask(**end) == "DUNNO"
        relay.cut()
        refusal = f"450 4.7.1 Daily sending limit reached for {domain} (1 message)"
        assert client.ask(**request("RCPT", sender)) == refusal
        end = request("END-OF-MESSAGE", sender, f"N{RUN}2", 1)
        assert client.ask(**end).startswith(UNAVAILABLE_PREFIX)
        assert db.counter(domain)["sent_today"] == 1
    finally:
        relay.close()


# -- stopping and restarting ------------------------------------------------------
def test_stop_answers_the_request_in_flight_and_closes_idle_ones(db, daemons):
    sender = f"eve@{db.domain('stop')}"
    daemon = daemons()
    idle, busy = daemon.connect(), daemon.connect()
    assert idle.ask(**request("RCPT", sender)) == "DUNNO"
    assert busy.ask(**request("RCPT", sender)) == "DUNNO"
    data = encode(request("END-OF-MESSAGE", sender, f"S{RUN}1", 1))
    busy.send(data[:50])
    time.sleep(0.2)  # the daemon has the first half
    started = time.monotonic()
    daemon.terminate()
    with pytest.raises(ConnectionError):
        idle.answer()  # closed at once, not after Postfix's timeout
    assert time.monotonic() - started < 2
    with pytest.raises(OSError):
        daemon.connect()  # nothing is accepted any more
    busy.send(data[50:])
    assert busy.answer() == "DUNNO"
    with pytest.raises(ConnectionError):
        busy.answer()
    daemon.stop()
    assert db.messages(f"S{RUN}") == [f"S{RUN}1"]


class RetryingClient:
    """Sends messages as Postfix's policy client does: one persistent
    connection; when it breaks, reconnect and send the same request again."""

    def __init__(self, listen):
        self.listen = listen
        self.client = None
        self.reconnects = 0

    def ask(self, attributes, deadline):
        while True:
            try:
                if self.client is None:
                    self.client = Client(self.listen)
                return self.client.ask(**attributes)
            except OSError:
                if self.client is not None:
                    self.client.close()
                self.client = None
                self.reconnects += 1
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


def test_graceful_restart_under_load_loses_and_duplicates_nothing(db, daemons):
    domain = db.domain("restart")
    sender = f"fay@{domain}"
    first = daemons(name="first")
    stop_sending = threading.Event()
    answers, errors, clients = {}, [], []
    lock = threading.Lock()

    def send_messages(index):
        client = RetryingClient(first.listen)
        clients.append(client)
        number = 0
        try:
            while not stop_sending.is_set():
                number += 1
                queue_id = f"R{RUN}x{index}x{number}"
                deadline = time.monotonic() + 20
                rcpt = client.ask(request("RCPT", sender), deadline)
                end = client.ask(
                    request("END-OF-MESSAGE", sender, queue_id, 1), deadline
                )
                with lock:
                    answers[queue_id] = (rcpt, end)
        except Exception as error:  # reported below, with the others
            errors.append(repr(error))

    threads = [threading.Thread(target=send_messages, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    time.sleep(0.7)
    first.terminate()
    # the next instance starts while the first one is still stopping
    second = daemons(listen=first.listen, name="second")
    first.stop()
    time.sleep(0.7)
    stop_sending.set()
    for thread in threads:
        thread.join(30)
    second.stop()

    assert not errors, errors
    assert set(answers.values()) == {("DUNNO", "DUNNO")}
    assert sum(client.reconnects for client in clients) >= 1
    served = [d.output().count(" END-OF-MESSAGE ") for d in (first, second)]
    assert all(served), served  # both instances counted messages
    assert db.messages(f"R{RUN}x") == sorted(answers)
    assert db.counter(domain)["sent_month"] == len(answers)


def test_unix_socket_mode_and_replacement(db, daemons, tmp_path):
    path = tmp_path / "policy.sock"
    sender = f"gus@{db.domain('unix')}"
    first = daemons(listen=f"unix:{path}", args=["--socket-mode", "0660"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o660
    assert first.connect().ask(**request("RCPT", sender)) == "DUNNO"
    # a new instance takes the path over at once; the old one, stopping,
    # leaves the new socket in place
    second = daemons(listen=f"unix:{path}", args=["--socket-mode", "0660"])
    first.stop()
    assert path.exists()
    assert second.connect().ask(**request("RCPT", sender)) == "DUNNO"
    second.stop()
    assert not path.exists()


# -- delivery results from Postfix's log ------------------------------------------
def _log_line(agent, queue_id, recipient, status, dsn):
    return (
        f"Nov 30 10:00:00 mx {agent}[4242]: {queue_id}: to=<{recipient}>, "
        f"relay=mx.example.net[192.0.2.25]:25, delay=0.4, "
        f"delays=0.1/0/0.1/0.2, dsn={dsn}, status={status} (remote said ...)\n"
    )


def _wait_read(daemon, maillog, state_path, timeout=15):
    """Wait until the follower's state points at the end of ``maillog``."""
    deadline, state = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        with contextlib.suppress(FileNotFoundError, ValueError):
            state = json.loads(state_path.read_text())
            info = maillog.stat()
            if state["inode"] == info.st_ino and state["offset"] == info.st_size:
                return
        time.sleep(0.05)
    info = maillog.stat()
    raise AssertionError(
        f"the maillog (inode {info.st_ino}, {info.st_size} bytes) was not read "
        f"to its end: {state}\n{daemon.output()}"
    )


def test_maillog_results_count_once_across_restarts_and_rotation(db, daemons, tmp_path):
    domain = db.domain("maillog")
    sender = f"hal@{domain}"
    first_id, second_id = f"4M{RUN}A", f"4M{RUN}B"
    # unix sockets: several starts, and no TCP port to lose to another process
    listen = f"unix:{tmp_path}/policy.sock"
    client = daemons(listen=listen).connect()
    for queue_id, recipients in ((first_id, 2), (second_id, 2)):
        end = request("END-OF-MESSAGE", sender, queue_id, recipients)
        assert client.ask(**end) == "DUNNO"
    client.close()

    maillog, state = tmp_path / "mail.log", tmp_path / "maillog.state"
    first_lines = [
        "Nov 30 10:00:00 mx postfix/submission/smtpd[1]: connect from laptop\n",
        _log_line("postfix/smtp", first_id, "r1@example.net", "bounced", "5.1.1"),
        _log_line(
            "postfix-submission/smtp", first_id, "r2@example.net", "sent", "2.0.0"
        ),
        _log_line("postfix/smtp", second_id, "r3@example.net", "deferred", "4.4.1"),
        _log_line("postfix/smtp", "4UNKNOWN1", "r9@example.net", "sent", "2.0.0"),
    ]
    maillog.write_text("".join(first_lines))
    follow = ["--maillog", str(maillog), "--state", str(state)]
    follow += ["--poll-interval", "0.1"]
    daemon = daemons(listen=listen, args=follow, name="follower")
    _wait_read(daemon, maillog, state)
    counter = db.counter(domain)
    results = (counter["delivered_count"], counter["bounce_count"])
    assert results == (2, 1), daemon.output()

    # a restart resumes where the last one stopped
    daemon.stop()
    with maillog.open("a") as log:
        log.write(
            _log_line("postfix/lmtp", second_id, "r3@example.net", "sent", "2.0.0")
        )
    daemon = daemons(listen=listen, args=follow, name="follower")
    _wait_read(daemon, maillog, state)
    assert db.counter(domain)["delivered_count"] == 3, daemon.output()

    # rotation: the end of the old file is read, then the new one
    rotated = tmp_path / "mail.log.1"
    maillog.rename(rotated)
    with rotated.open("a") as log:
        log.write(
            _log_line("postfix/smtp", second_id, "r4@example.net", "sent", "2.0.0")
        )
    maillog.write_text(
        _log_line("postfix/error", first_id, "r5@example.net", "bounced", "5.0.0")
    )
    _wait_read(daemon, maillog, state)
    counter = db.counter(domain)
    results = (counter["delivered_count"], counter["bounce_count"])
    assert results == (5, 2), daemon.output()

    # a restart without its state reads every line again: nothing counts twice
    daemon.stop()
    state.unlink()
    with maillog.open("a") as log:
        log.write(rotated.read_text())
    daemon = daemons(listen=listen, args=follow, name="follower")
    _wait_read(daemon, maillog, state)
    daemon.stop()
    counter = db.counter(domain)
    assert (counter["delivered_count"], counter["bounce_count"]) == (5, 2)
    rows = db.query(
        "SELECT count(*) FROM emboux_mailserver.outbound_delivery WHERE queue_id IN %s",
        ((first_id, second_id),),
    )
    assert rows[0][0] == 5
    assert os.path.getsize(maillog) == json.loads(state.read_text())["offset"]
