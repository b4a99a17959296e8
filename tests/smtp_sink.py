"""The relay host of the outbound tests: a real SMTP server on loopback
(aiosmtpd) that keeps what Postfix relays to it, and refuses the recipients
a test names with a permanent 550, as a receiving server does for an
address that does not exist."""

import threading

from aiosmtpd.controller import Controller


class _Handler:
    def __init__(self, sink):
        self.sink = sink

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.sink.refuses(address):
            return f"550 5.1.1 <{address}>: Recipient address rejected: no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.sink.lock:
            self.sink.messages.append(
                (envelope.mail_from, list(envelope.rcpt_tos), envelope.content)
            )
        return "250 OK: queued"


class SmtpSink:
    """``messages``: ``(sender, recipients, raw bytes)`` as received."""

    def __init__(self, port):
        self.port = port
        self.messages = []
        self.lock = threading.Lock()
        self.refused_prefix = None
        self.controller = Controller(
            _Handler(self), hostname="127.0.0.1", port=port, ready_timeout=10
        )
        self.controller.start()

    def refuses(self, address):
        prefix = self.refused_prefix
        return bool(prefix) and address.lower().startswith(prefix)

    def clear(self):
        with self.lock:
            self.messages.clear()

    def received(self):
        with self.lock:
            return list(self.messages)

    def stop(self):
        self.controller.stop()
