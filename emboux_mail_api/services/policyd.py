"""The outbound policy service of a mail host: per-domain sending limits.

Postfix asks this daemon, over its SMTP access policy delegation protocol
(``name=value`` lines, an empty line ends a request, the answer is one
``action=...`` line and an empty line, many requests per connection), whether
an authenticated customer may send. The verdicts come from the functions that
``emboux_mail_api`` keeps in the schema ``emboux_mailserver`` of the Odoo
database (see models/emboux_mail_server.py), at most one call per decision:

* ``RCPT``: ``outbound_check(sender, size)`` counts nothing; a domain at its
  hard limit, suspended or not verified is refused before DATA. The answer
  for the first recipient of a transaction serves its other recipients, and
  the verdict on a domain's next message that its last count or check gave
  serves for a second (``--verdict-cache``).
* ``END-OF-MESSAGE``: ``outbound_count(queue_id, sender, recipients, size)``
  gives the verdict and counts the message once, whatever its recipient
  count; a queue id seen before gets its first verdict again and counts
  nothing, so a request Postfix repeats after a lost answer never counts
  twice.
* anything else, and every request without ``sasl_username`` (not an
  authenticated submission), is answered ``DUNNO``.

An allowed message is answered ``DUNNO`` (a soft limit crossed still sends:
the overage is billed); a refusal is the function's code and text, e.g.
``450 4.7.1 Daily sending limit reached for example.com (500 messages)``.
When the database cannot be reached or a call fails the answer is
``451 4.3.0``, never an allowance: a message is only sent once counted.

With ``--maillog``, a thread follows Postfix's log file like ``tail -F`` and
reports each final delivery result of a counted message (``status=sent`` or
``status=bounced`` of smtp, lmtp, error, ...; ``deferred`` is not final) to
``outbound_delivery``, which feeds the bounce guard. Its position (offset and
inode) is kept in ``--state``, so a restart resumes where it stopped; the
function ignores a result it already has, so reading a line twice is harmless.

It needs Python 3.10+ and psycopg2, nothing else (no Odoo).

Database role: the functions are SECURITY DEFINER and EXECUTE is revoked from
PUBLIC, so the service logs in with a role of its own that may call them and
nothing else (not the mail servers' read-only role: counting writes)::

    CREATE ROLE emboux_policy LOGIN PASSWORD '...';
    GRANT CONNECT ON DATABASE odoo TO emboux_policy;
    GRANT USAGE ON SCHEMA emboux_mailserver TO emboux_policy;
    GRANT EXECUTE ON FUNCTION
        emboux_mailserver.outbound_check(text, bigint),
        emboux_mailserver.outbound_count(text, text, integer, bigint),
        emboux_mailserver.outbound_delivery(text, text, text)
        TO emboux_policy;

(``mailserver.py --policy-password`` writes this SQL.) Start it, with the
password in a file that only the service's user may read, not on the command
line::

    python3 policyd.py --listen 127.0.0.1:10040 \\
        --dsn-file /etc/emboux/policyd.dsn \\
        --maillog /var/log/mail.log --state /var/lib/emboux-policyd/maillog.state

where ``policyd.dsn`` holds ``host=10.0.0.5 port=5432 dbname=odoo
user=emboux_policy password=...``. ``--listen unix:/path`` with
``--socket-mode 0660`` serves a unix socket instead. SIGTERM or SIGINT stop it
gracefully (exit status 0): no new connection is accepted, a request already
received is answered, idle connections are closed at once. Postfix's client
then reconnects on its next request (and retries once), so the daemon may be
restarted while mail flows; a request that finds no daemon at all gets the
``default_action`` below, a temporary refusal the sender retries.

Postfix: the submission service asks the daemon at RCPT (early refusal) and
at the end of the message (the count), before it permits authenticated
clients. Queue ids must be unique over the week the database keeps them
(a reused one would get an old verdict and count nothing), which Postfix's
short ids are not. In main.cf::

    enable_long_queue_ids = yes
    emboux_submission_recipient =
        reject_non_fqdn_recipient,
        check_policy_service { inet:127.0.0.1:10040, timeout=10s,
            { default_action = 451 4.3.5 Outbound policy unavailable } },
        permit_sasl_authenticated, reject
    emboux_submission_end_of_data =
        check_policy_service { inet:127.0.0.1:10040, timeout=10s,
            { default_action = 451 4.3.5 Outbound policy unavailable } }

and in master.cf::

    submission inet n - n - - smtpd
      -o syslog_name=postfix/submission
      -o smtpd_sasl_auth_enable=yes
      -o smtpd_recipient_restrictions=$emboux_submission_recipient
      -o smtpd_end_of_data_restrictions=$emboux_submission_end_of_data

(``unix:/path`` instead of ``inet:...`` for a unix socket). The default
action must not be ``DUNNO``: mail would then leave uncounted while the
daemon is away. ``mailserver.py`` writes an equivalent configuration, and
this role's SQL, for the product's own mail hosts.
"""

import argparse
import contextlib
import errno
import json
import logging
import os
import re
import selectors
import signal
import socket
import socketserver
import stat
import sys
import threading
import time

import psycopg2
import psycopg2.extensions
import psycopg2.pool

_logger = logging.getLogger("policyd")

DUNNO = "DUNNO"
UNAVAILABLE = (
    "451 4.3.0 Outbound mail policy temporarily unavailable: "
    "sending limits cannot be checked, please try again later"
)
MAX_REQUEST = 64 * 1024  # Postfix sends well under 2 KB per request
MAX_REPLY_TEXT = 400  # an SMTP reply line is at most 512 bytes
# how long the RCPT verdict of one SMTP transaction answers its next
# recipients (a slow client may space its RCPT commands)
RCPT_MEMO_SECONDS = 10.0
# how long the verdict on a domain's next message, learnt at its last count
# or RCPT check, answers its next RCPT without asking the database; the
# count at END-OF-MESSAGE always asks, so a stale allowance sends nothing
VERDICT_SECONDS = 1.0
SCHEMA = "emboux_mailserver"
# the calls, prepared on each connection of the pool
PREPARED = (
    "PREPARE emboux_check(text, bigint) AS SELECT allowed, code, reason "
    f"FROM {SCHEMA}.outbound_check($1, $2)",
    "PREPARE emboux_count(text, text, integer, bigint) AS "
    "SELECT allowed, code, reason, sent_today, sent_month, "
    "next_allowed, next_code, next_reason "
    f"FROM {SCHEMA}.outbound_count($1, $2, $3, $4)",
    "PREPARE emboux_delivery(text, text, text) AS "
    f"SELECT {SCHEMA}.outbound_delivery($1, $2, $3)",
)
# connection settings a DSN gets unless it sets them itself: fail fast when
# the database host is gone, rather than outlive Postfix's own timeout
DSN_DEFAULTS = {
    "connect_timeout": "3",
    "application_name": "emboux-policyd",
    "keepalives": "1",
    "keepalives_idle": "10",
    "keepalives_interval": "3",
    "keepalives_count": "3",
}


# -- database -------------------------------------------------------------------
class Unavailable(Exception):
    """The database could not give an answer; the text says why."""


class _Pool(psycopg2.pool.ThreadedConnectionPool):
    """Opens no connection before it is needed (the daemon starts, and
    answers 451, while the database is down), then keeps up to ``size``
    idle ones: psycopg2's pool keeps at most ``minconn``."""

    def __init__(self, size, dsn):
        super().__init__(0, size, dsn)
        self.minconn = size


class Database:
    """The policy functions over a small pool of autocommit connections.

    ``size`` calls run at once; a call waits up to ``timeout`` seconds for a
    free connection, and the server cancels a statement that runs longer
    than that. A connection found broken (the database restarted, a network
    cut) is dropped and the call retried once on a new one: every function
    is idempotent (``outbound_count`` by queue id, ``outbound_delivery`` by
    queue id and recipient)."""

    def __init__(self, dsn, size=8, timeout=5.0):
        params = psycopg2.extensions.parse_dsn(dsn)
        for key, value in DSN_DEFAULTS.items():
            params.setdefault(key, value)
        self.size = size
        self.timeout = timeout
        self._pool = _Pool(size, psycopg2.extensions.make_dsn(**params))
        self._slots = threading.BoundedSemaphore(size)
        self._warned_at = 0.0
        self._suppressed = 0
        self._warn_lock = threading.Lock()

    def close(self):
        with contextlib.suppress(psycopg2.pool.PoolError):
            self._pool.closeall()

    def check(self, sender, size):
        """(allowed, code, reason) of one more message at RCPT time."""
        return self._call("EXECUTE emboux_check(%s, %s)", (sender, size))

    def count(self, queue_id, sender, recipients, size):
        """(allowed, code, reason, sent_today, sent_month, next_allowed,
        next_code, next_reason) of one message, counted when allowed and not
        seen before; ``next_*`` is the verdict on the domain's next message
        (NULL for a queue id seen before)."""
        query = "EXECUTE emboux_count(%s, %s, %s, %s)"
        return self._call(query, (queue_id, sender, recipients, size))

    def delivery(self, queue_id, recipient, status):
        """True when the delivery result was new and counted."""
        query = "EXECUTE emboux_delivery(%s, %s, %s)"
        return self._call(query, (queue_id, recipient, status))[0]

    def _call(self, query, params):
        if not self._slots.acquire(timeout=self.timeout):
            raise Unavailable("every database connection stayed busy")
        try:
            while True:
                conn, fresh = self._connection()
                try:
                    with conn.cursor() as cr:
                        cr.execute(query, params)
                        row = cr.fetchone()
                except psycopg2.Error as error:
                    broken = bool(conn.closed)
                    self._pool.putconn(conn, close=broken)
                    if broken and not fresh:
                        continue  # a stale pooled connection: try a new one
                    self._warn("database call failed: %s", _one_line(error))
                    raise Unavailable(_one_line(error)) from error
                self._pool.putconn(conn)
                if row is None:
                    raise Unavailable("the policy function answered no row")
                return row
        finally:
            self._slots.release()

    def _connection(self):
        """(connection, whether it is new): a pooled one, or a new one set
        up (autocommit, statement timeout); Unavailable when none opens."""
        try:
            conn = self._pool.getconn()
        except (psycopg2.Error, psycopg2.pool.PoolError) as error:
            self._warn("cannot connect to the database: %s", _one_line(error))
            raise Unavailable(_one_line(error)) from error
        fresh = not conn.autocommit
        if fresh:
            try:
                conn.autocommit = True
                with conn.cursor() as cr:
                    cr.execute(
                        "SELECT set_config('statement_timeout', %s, false)",
                        (str(int(self.timeout * 1000)),),
                    )
                    # parsed and planned once per connection, not per call
                    for statement in PREPARED:
                        cr.execute(statement)
            except psycopg2.Error as error:
                self._pool.putconn(conn, close=True)
                self._warn("cannot set up a connection: %s", _one_line(error))
                raise Unavailable(_one_line(error)) from error
        return conn, fresh

    def _warn(self, message, *args):
        """Log a database problem at most every 10 s: when the database is
        down, every request would log it otherwise."""
        with self._warn_lock:
            now = time.monotonic()
            if now - self._warned_at < 10:
                self._suppressed += 1
                return
            suppressed, self._suppressed, self._warned_at = self._suppressed, 0, now
        if suppressed:
            message += " (and %d more since the last warning)"
            args = (*args, suppressed)
        _logger.warning(message, *args)


def _one_line(error):
    text = str(error).strip() or type(error).__name__
    return " ".join(text.split())


# -- policies -------------------------------------------------------------------
class Policy:
    """What the server answers: ``decide`` gets one request (its attributes,
    ``{name: value}``) and returns the action, without ``action=``. This one
    answers DUNNO to everything (a do-nothing policy server)."""

    def decide(self, request):
        return DUNNO

    def close(self):
        """Release what the policy holds when the server stops."""


class OutboundPolicy(Policy):
    """The per-domain outbound limits, from the database ``db``.

    Postfix asks at every RCPT of a transaction with the same ``instance``,
    sender and size, over the same connection (so in the same thread): the
    first answer serves the next recipients for ``RCPT_MEMO_SECONDS``,
    rather than one database call per recipient. The first RCPT of a
    message takes the verdict that the domain's last count or check gave on
    its next message, if at most ``verdict_seconds`` old. END-OF-MESSAGE,
    which counts, always asks the database."""

    def __init__(self, db, verdict_seconds=VERDICT_SECONDS):
        self.db = db
        self.verdict_seconds = verdict_seconds
        self._local = threading.local()
        # sender domain -> (expiry, verdict on its next message); plain dict
        # operations, atomic between threads
        self._next = {}

    def decide(self, request):
        state = request.get("protocol_state", "").upper()
        login = request.get("sasl_username", "")
        if not login or state not in ("RCPT", "END-OF-MESSAGE"):
            return DUNNO
        # the null sender (a bounce or a report sent through submission)
        # counts against the domain of the login that sends it
        sender = request.get("sender") or login
        size = _integer(request.get("size"))
        try:
            if state == "RCPT":
                allowed, code, reason = self._check(request, sender, size)
            else:
                recipients = _integer(request.get("recipient_count")) or None
                queue_id = request.get("queue_id") or None
                if queue_id is None:
                    _logger.warning("END-OF-MESSAGE without queue_id from %s", login)
                row = self.db.count(queue_id, sender, recipients, size)
                allowed, code, reason = row[:3]
                if row[5] is not None:
                    self._remember(sender, row[5:8])
        except Unavailable:
            return UNAVAILABLE
        if allowed:
            return DUNNO
        if not code:
            _logger.error("refusal without an SMTP code for %s: %s", sender, reason)
            return UNAVAILABLE
        return f"{code} {_reply_text(reason or 'Sending refused')}"

    def _check(self, request, sender, size):
        instance = request.get("instance")
        key = (instance, sender, size)
        now = time.monotonic()
        memo = getattr(self._local, "rcpt", None)
        if instance and memo and memo[0] == key and now < memo[1]:
            return memo[2]
        known = self._next.get(_domain_of(sender))
        if known and now < known[0]:
            verdict = known[1]
        else:
            verdict = self.db.check(sender, size)  # not kept when it raises
            self._remember(sender, verdict)
        self._local.rcpt = (key, now + RCPT_MEMO_SECONDS, verdict)
        return verdict

    def _remember(self, sender, verdict):
        if self.verdict_seconds <= 0:
            return
        if len(self._next) > 100000:  # senders come and go: start afresh
            self._next.clear()
        expiry = time.monotonic() + self.verdict_seconds
        self._next[_domain_of(sender)] = (expiry, tuple(verdict))

    def close(self):
        self.db.close()


def _domain_of(sender):
    return sender.rpartition("@")[2].lower()


def _integer(value):
    try:
        return max(int(value or 0), 0)
    except ValueError:
        return 0


def _reply_text(text):
    return " ".join(str(text).split())[:MAX_REPLY_TEXT]


# -- protocol -------------------------------------------------------------------
def parse_request(raw):
    """``{name: value}`` of one request (its bytes without the empty line).
    A repeated attribute keeps its last value; a line without ``=`` is
    ignored."""
    request = {}
    for line in raw.split(b"\n"):
        name, sep, value = line.partition(b"=")
        if sep:
            request[name.decode("ascii", "replace")] = value.decode("utf-8", "replace")
    return request


def format_action(action):
    return ("action=" + " ".join(action.split()) + "\n\n").encode("utf-8")


_Selector = getattr(selectors, "PollSelector", selectors.SelectSelector)


class PolicyHandler(socketserver.BaseRequestHandler):
    """One Postfix client connection: requests answered one after the
    other, until the client closes it, it stays idle too long, or the
    server stops (then a request already begun is still answered)."""

    def setup(self):
        self.pending = b""  # received, not yet answered
        self.deadline = None  # when the request begun in ``pending`` must end
        self.idle_until = time.monotonic() + self.server.idle_timeout
        self.selector = _Selector()
        self.selector.register(self.request, selectors.EVENT_READ)
        self.selector.register(self.server.wake_fd, selectors.EVENT_READ)
        self.watching_wake = True

    def finish(self):
        self.selector.close()

    def handle(self):
        server = self.server
        try:
            while True:
                raw = self._next_request()
                if raw is None:
                    return
                self.request.sendall(format_action(server.answer(raw)))
                if server.stopping and not self.pending:
                    return
                self.idle_until = time.monotonic() + server.idle_timeout
        except OSError as error:
            if not server.stopping:
                _logger.debug("connection error: %s", error)

    def _next_request(self):
        """The bytes of the next complete request, or None: close."""
        while True:
            end = self.pending.find(b"\n\n")
            if end >= 0:
                raw, self.pending = self.pending[:end], self.pending[end + 2 :]
                self.deadline = None
                if self.pending:
                    self.deadline = time.monotonic() + self.server.request_timeout
                return raw
            timeout = self._time_left()
            if timeout <= 0:
                if self.pending:
                    _logger.warning("incomplete request timed out; closing")
                return None
            events = self.selector.select(timeout)
            if not any(key.fileobj is self.request for key, _mask in events):
                continue  # woken by the stop, or timed out: checked above
            data = self.request.recv(65536)
            if not data or not self._receive(data):
                return None

    def _time_left(self):
        """Seconds to wait for more bytes; 0 or less: close now."""
        server = self.server
        if server.stopping:
            if self.watching_wake:
                self.selector.unregister(server.wake_fd)
                self.watching_wake = False
            if not self.pending and not _readable(self.request):
                return 0  # idle: close at once, Postfix reconnects
            stop_at = server.stop_deadline
            self.deadline = (
                stop_at if self.deadline is None else min(self.deadline, stop_at)
            )
        return (self.deadline or self.idle_until) - time.monotonic()

    def _receive(self, data):
        """Add ``data`` to the request being read; False if it is too large."""
        if not self.pending:
            data = data.lstrip(b"\r\n")
            if data and self.deadline is None:
                self.deadline = time.monotonic() + self.server.request_timeout
        self.pending += data
        if b"\r" in self.pending:
            self.pending = self.pending.replace(b"\r\n", b"\n")
        if len(self.pending) > MAX_REQUEST and b"\n\n" not in self.pending:
            _logger.warning("request over %d bytes; closing", MAX_REQUEST)
            return False
        return True


def _readable(sock):
    """True when ``sock`` has bytes (or an EOF) waiting right now."""
    with _Selector() as probe:
        probe.register(sock, selectors.EVENT_READ)
        return bool(probe.select(0))


class PolicyServerMixin:
    """A threaded policy server: one thread per Postfix connection, every
    request answered by ``policy.decide``. ``stop()`` stops it gracefully."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self,
        address,
        policy,
        socket_mode=None,
        idle_timeout=600.0,
        request_timeout=30.0,
    ):
        self.policy = policy
        self.socket_mode = socket_mode
        self.idle_timeout = idle_timeout
        self.request_timeout = request_timeout
        self.verbose = False
        self.stopping = False
        self.stop_deadline = None
        self._wake_r, self._wake_w = os.pipe()
        self.wake_fd = self._wake_r
        self._active = set()
        self._active_lock = threading.Condition()
        super().__init__(address, PolicyHandler)

    def answer(self, raw):
        """The action for the request ``raw``; 451 if the policy fails."""
        request = parse_request(raw)
        started = time.perf_counter()
        try:
            action = self.policy.decide(request)
        except Exception:
            _logger.exception("the policy failed on a request")
            action = UNAVAILABLE
        if self.verbose:
            _logger.info(
                "%s queue_id=%s sasl_username=%s sender=%s recipient_count=%s "
                "size=%s -> %s (%.1f ms)",
                request.get("protocol_state", "-"),
                request.get("queue_id") or "-",
                request.get("sasl_username") or "-",
                request.get("sender") or "<>",
                request.get("recipient_count", "-"),
                request.get("size", "-"),
                action,
                (time.perf_counter() - started) * 1000,
            )
        return action

    def process_request(self, request, client_address):
        # registered before its thread starts, so that stop() waits for it
        with self._active_lock:
            self._active.add(request)
        try:
            return super().process_request(request, client_address)
        except Exception:
            self._forget(request)
            raise

    def process_request_thread(self, request, client_address):
        try:
            return super().process_request_thread(request, client_address)
        finally:
            self._forget(request)

    def _forget(self, request):
        with self._active_lock:
            self._active.discard(request)
            self._active_lock.notify_all()

    def stop(self, grace=10.0):
        """Stop accepting, answer the requests already begun (for at most
        ``grace`` seconds), close every connection and the listener."""
        self.stop_deadline = time.monotonic() + grace
        self.stopping = True
        self.shutdown()  # serve_forever returns: nothing is accepted any more
        self.server_close()
        os.write(self._wake_w, b"x")  # idle connections close at once
        with self._active_lock:
            while self._active:
                left = self.stop_deadline - time.monotonic()
                if left <= 0:
                    break
                self._active_lock.wait(left)
            for sock in list(self._active):
                _logger.warning("closing a connection that did not finish in time")
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            finished = not self._active
        if finished:  # else a late thread may still poll the pipe
            os.close(self._wake_r)
            os.close(self._wake_w)


class PolicyTCPServer(PolicyServerMixin, socketserver.ThreadingTCPServer):
    """The policy server on a TCP address ``(host, port)``."""

    def server_bind(self):
        # right after a restart the old instance may still hold the port
        # for a moment: wait for it rather than fail
        for attempt in range(50):
            try:
                return super().server_bind()
            except OSError as error:
                if error.errno != errno.EADDRINUSE or attempt == 49:
                    raise
                time.sleep(0.2)


class PolicyTCP6Server(PolicyTCPServer):
    address_family = socket.AF_INET6


class PolicyUnixServer(PolicyServerMixin, socketserver.ThreadingUnixStreamServer):
    """The policy server on a unix socket. The socket is made under a
    temporary name and renamed into place, so a new instance replaces a
    running one at once; each removes the path on exit only while it is
    still its own socket."""

    def server_bind(self):
        path = self.server_address
        found = _stat(path)
        if found is not None and not stat.S_ISSOCK(found.st_mode):
            raise OSError(errno.EEXIST, f"{path} exists and is not a socket")
        # beside it, and short: a socket's path holds at most 107 bytes
        temporary = os.path.join(os.path.dirname(path), f".policyd-{os.getpid()}")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        self.socket.bind(temporary)
        if self.socket_mode is not None:
            os.chmod(temporary, self.socket_mode)
        self._inode = os.stat(temporary).st_ino
        os.rename(temporary, path)

    def server_close(self):
        closed = super().server_close()
        with contextlib.suppress(OSError):
            if os.stat(self.server_address).st_ino == self._inode:
                os.unlink(self.server_address)
        return closed


def make_server(listen, policy, socket_mode=None, **options):
    """A server for ``listen`` (``host:port``, ``[v6]:port`` or
    ``unix:/path``), answering with ``policy``; bound and listening."""
    if listen.startswith("unix:"):
        path = listen[len("unix:") :]
        return PolicyUnixServer(path, policy, socket_mode=socket_mode, **options)
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"--listen {listen!r}: expected host:port or unix:/path")
    if host.startswith("[") and host.endswith("]"):
        return PolicyTCP6Server((host[1:-1], int(port)), policy, **options)
    return PolicyTCPServer((host or "127.0.0.1", int(port)), policy, **options)


# -- Postfix's log ----------------------------------------------------------------
# a final delivery result of one recipient, e.g.
#   postfix/smtp[123]: 4XyZ1abcD: to=<rcpt@example.net>, relay=..., status=bounced
# of any instance (postfix-out/smtp) or service name (postfix/relay/smtp)
DELIVERY_LINE = re.compile(
    r"(?:^|\s)postfix[\w.-]*(?:/[\w.-]+)*/(?:smtp|lmtp|error|local|virtual|pipe)\[\d+\]:"
    r"\s+(?P<queue_id>[0-9A-Za-z]+):\s+to=<(?P<recipient>[^>]+)>,"
    r".*?\sstatus=(?P<status>sent|bounced)\b"
)


def parse_delivery(line):
    """(queue id, recipient, 'sent' | 'bounced') of a log line, or None."""
    found = DELIVERY_LINE.search(line)
    if found is None:
        return None
    return found.group("queue_id"), found.group("recipient"), found.group("status")


class MaillogFollower(threading.Thread):
    """Follows ``path`` like ``tail -F`` (rotation by rename, truncation)
    and reports each delivery result to ``db``. ``state`` keeps the inode
    and the offset of the first line not yet reported; after a restart the
    rest of a file rotated meanwhile is read first, when it is still in the
    same folder under the log's name with a suffix."""

    def __init__(self, path, state, db, interval=1.0, verbose=False):
        super().__init__(name="maillog", daemon=True)
        self.path = os.path.abspath(path)
        self.state = state
        self.db = db
        self.interval = interval
        self.verbose = verbose
        self.stopping = threading.Event()
        self._file = None
        self._inode = None
        self._offset = 0  # of the first byte not yet reported
        self._saved = None
        self._saved_at = 0.0

    def stop(self, timeout=10.0):
        self.stopping.set()
        self.join(timeout)

    def run(self):
        try:
            try:
                self._resume()
            except OSError as error:  # then read from the start: idempotent
                _logger.error("maillog follower: cannot resume: %s", error)
            while not self.stopping.is_set():
                try:
                    if self._follow():
                        continue
                except OSError as error:  # the disk is full, a permission...
                    _logger.error("maillog follower: %s; retrying in 5 s", error)
                    self.stopping.wait(5.0)
                    continue
                self.stopping.wait(self.interval)
        finally:
            with contextlib.suppress(OSError):
                self._save(force=True)
            if self._file is not None:
                self._file.close()

    # -- position ---------------------------------------------------------------
    def _resume(self):
        saved = {}
        with contextlib.suppress(FileNotFoundError, ValueError):
            with open(self.state, encoding="utf-8") as handle:
                saved = json.load(handle)
        if not isinstance(saved, dict) or not isinstance(saved.get("offset", 0), int):
            _logger.warning("%s is not a maillog position; ignoring it", self.state)
            saved = {}
        inode, offset = saved.get("inode"), saved.get("offset") or 0
        current = _stat(self.path)
        if current is None:
            _logger.warning("%s does not exist (yet); waiting for it", self.path)
        if inode is None:
            _logger.info("reading %s from its start", self.path)
        elif current is not None and current.st_ino == inode:
            self._open(self.path, offset if offset <= current.st_size else 0)
            return
        else:
            rotated = self._find_rotated(inode)
            if rotated is not None:
                _logger.info("finishing %s (rotated) from offset %d", rotated, offset)
                self._open(rotated, offset)
                return
            _logger.warning(
                "%s was rotated and its former file is gone: reading the new "
                "one from its start",
                self.path,
            )
        if current is not None:
            self._open(self.path, 0)

    def _find_rotated(self, inode):
        folder, base = os.path.split(self.path)
        with contextlib.suppress(OSError):
            for name in sorted(os.listdir(folder)):
                if name.startswith(base) and name != base:
                    candidate = os.path.join(folder, name)
                    found = _stat(candidate)
                    if found and stat.S_ISREG(found.st_mode) and found.st_ino == inode:
                        return candidate
        return None

    def _open(self, path, offset):
        if self._file is not None:
            self._file.close()
        self._file = open(path, "rb")  # kept open while followed
        self._inode = os.fstat(self._file.fileno()).st_ino
        self._file.seek(offset)
        self._offset = offset
        self._save(force=True)

    def _save(self, force=False):
        if self._inode is None:
            return
        state = {"path": self.path, "inode": self._inode, "offset": self._offset}
        now = time.monotonic()
        if state == self._saved or (not force and now - self._saved_at < 1.0):
            return
        temporary = f"{self.state}.tmp"
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(state, handle)
        os.replace(temporary, self.state)
        self._saved, self._saved_at = state, now

    # -- reading ----------------------------------------------------------------
    def _follow(self):
        """Report the complete lines written since the last call; switch to
        a new file after a rotation. False when there was nothing to do."""
        if self._file is None:
            if _stat(self.path) is None:
                return False
            self._open(self.path, 0)
        progressed = self._read_lines()
        current = _stat(self.path)
        if current is None:
            return progressed  # between a rotation and the new file
        if current.st_ino != self._inode:
            # rotated: the writer may still add to the old file until it
            # reopens its log, so it is left once it stopped growing
            if progressed:
                return True
            self._read_lines(final=True)
            _logger.info("%s was rotated; following the new file", self.path)
            self._open(self.path, 0)
            return True
        if current.st_size < self._offset:
            _logger.info("%s was truncated; reading it from its start", self.path)
            self._open(self.path, 0)
            return True
        return progressed

    def _read_lines(self, final=False):
        """Report the complete lines after the offset (with ``final``, a
        last line without its newline too); True when the offset moved."""
        start = self._offset
        self._file.seek(start)
        data = self._file.read(1 << 20)
        end = data.rfind(b"\n")
        complete = data if final else data[: end + 1]
        for line in complete.splitlines(keepends=True):
            if self.stopping.is_set() or not self._report(line):
                break
            self._offset += len(line)
        self._save()
        return self._offset != start

    def _report(self, line):
        """Report one line's delivery result; False when stopping before it
        could (the line stays unread and is retried after a restart)."""
        found = parse_delivery(line.decode("utf-8", "replace"))
        if found is None:
            return True
        delay = 1.0
        while True:
            try:
                counted = self.db.delivery(*found)
            except Unavailable:
                if self.stopping.wait(delay):
                    return False
                delay = min(delay * 2, 30.0)
                continue
            if self.verbose:
                _logger.info(
                    "delivery %s to=<%s> %s: %s",
                    *found,
                    "counted" if counted else "not a counted message or known",
                )
            return True


def _stat(path):
    try:
        return os.stat(path)
    except OSError:
        return None


# -- running ----------------------------------------------------------------------
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def stop_on_signals():
    """An event that SIGTERM and SIGINT set. Call it from the main thread
    first thing, so that a signal during start-up stops gracefully too."""
    stop = threading.Event()

    def request_stop(signum, _frame):
        _logger.info("%s received; stopping", signal.Signals(signum).name)
        stop.set()

    for signum in STOP_SIGNALS:
        signal.signal(signum, request_stop)
    return stop


def serve(server, stop, grace=10.0, on_stop=()):
    """Serve until ``stop`` is set (see ``stop_on_signals``), then stop
    gracefully: the server first, then the ``on_stop`` callables. Call from
    the main thread. Once stopping, further signals are ignored until the
    process exits: a second SIGTERM (an impatient supervisor) must not turn
    a clean stop into a killed process."""
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="accept"
    )
    thread.start()
    try:
        while not stop.wait(1.0):
            if not thread.is_alive():
                raise RuntimeError("the server stopped accepting connections")
    finally:
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)
        server.stop(grace)
        thread.join()
        for callback in on_stop:
            callback()


def read_dsn(args):
    if args.dsn_file:
        mode = os.stat(args.dsn_file).st_mode
        if mode & stat.S_IROTH:
            _logger.warning("%s is readable by every user of the host", args.dsn_file)
        with open(args.dsn_file, encoding="utf-8") as handle:
            return handle.read().strip()
    return args.dsn


def _octal(value):
    return int(value, 8)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Postfix policy service enforcing per-domain outbound limits."
    )
    parser.add_argument(
        "--listen",
        default="127.0.0.1:10040",
        help="host:port, [ipv6]:port or unix:/path (default: %(default)s)",
    )
    parser.add_argument(
        "--socket-mode",
        type=_octal,
        help="octal permissions of a unix socket, e.g. 0660",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dsn", help="libpq connection string")
    source.add_argument(
        "--dsn-file", help="file holding the connection string (keeps it out of ps)"
    )
    parser.add_argument("--pool-size", type=int, default=8, help="database connections")
    parser.add_argument(
        "--query-timeout",
        type=float,
        default=5.0,
        help="seconds a decision may wait for the database (default: %(default)s)",
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=600.0,
        help="seconds before an idle connection is closed (default: %(default)s)",
    )
    parser.add_argument(
        "--stop-timeout",
        type=float,
        default=10.0,
        help="seconds to finish requests in flight on stop (default: %(default)s)",
    )
    parser.add_argument("--maillog", help="Postfix's log file, to report deliveries")
    parser.add_argument("--state", help="where the maillog position is kept")
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=1.0,
        help="seconds between looks at an idle maillog (default: %(default)s)",
    )
    parser.add_argument(
        "--verdict-cache",
        type=float,
        default=VERDICT_SECONDS,
        help="seconds a domain's last verdict answers its next RCPT; 0 asks "
        "the database at every RCPT (default: %(default)s)",
    )
    parser.add_argument("--verbose", action="store_true", help="log every decision")
    args = parser.parse_args(argv)
    if bool(args.maillog) != bool(args.state):
        parser.error("--maillog and --state go together")
    if args.state and not os.access(os.path.dirname(args.state) or ".", os.W_OK):
        parser.error(f"--state {args.state}: its folder is not writable")
    if args.pool_size < 1:
        parser.error("--pool-size must be at least 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s policyd: %(message)s",
    )
    stop = stop_on_signals()
    try:
        dsn = read_dsn(args)
        db = Database(dsn, size=args.pool_size, timeout=args.query_timeout)
    except (OSError, psycopg2.Error) as error:
        _logger.error("bad database settings: %s", _one_line(error))
        return 2
    policy = OutboundPolicy(db, args.verdict_cache)
    try:
        server = make_server(
            args.listen,
            policy,
            socket_mode=args.socket_mode,
            idle_timeout=args.idle_timeout,
        )
    except (OSError, ValueError) as error:
        _logger.error("cannot listen on %s: %s", args.listen, error)
        return 1
    server.verbose = args.verbose
    on_stop = []
    if args.maillog:
        follower = MaillogFollower(
            args.maillog, args.state, db, args.poll_interval, args.verbose
        )
        follower.start()
        on_stop.append(follower.stop)
    on_stop.append(policy.close)
    _logger.info("listening on %s", args.listen)
    serve(server, stop, args.stop_timeout, on_stop)
    _logger.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
