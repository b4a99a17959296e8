"""Processes the set-up starts and must stop for good: a server's whole
process group (prefork masters leave workers behind when killed alone),
the ports they listen on, and waiting for a port to answer."""

import os
import signal
import socket
import time
from pathlib import Path

_GIVEN_PORTS = set()


def free_port():
    """A loopback port nothing listens on, and none this process gave
    before: two ports asked for one after the other can be the same one (a
    chance in some thousands), and two services then share it."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in _GIVEN_PORTS:
            _GIVEN_PORTS.add(port)
            return port


def wait_port(port, deadline, host="127.0.0.1", alive=lambda: True):
    """Wait until ``port`` accepts a connection, before ``deadline`` (a
    ``time.monotonic()``); False if ``alive()`` says its process died."""
    while time.monotonic() < deadline:
        if not alive():
            return False
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def proc_stat(pid):
    """(ppid, pgrp, state) of ``pid``, or None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), int(fields[2]), fields[0]


def pids():
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def group_members(pgid):
    """The live (not zombie) processes of process group ``pgid``."""
    members = []
    for pid in pids():
        stat = proc_stat(pid)
        if stat and stat[1] == pgid and stat[2] not in ("Z", "X"):
            members.append(pid)
    return members


def kill_group(pgid, timeout=30):
    """SIGKILL every process of ``pgid`` and wait until none is left."""
    deadline = time.monotonic() + timeout
    while group_members(pgid):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"process group {pgid} survived SIGKILL")
        time.sleep(0.05)
