"""Check that a domain publishes the MX, SPF, DKIM and DMARC records that
mail hosting needs (dnspython, no Odoo).

Four outcomes per record, kept apart on purpose: ``ok``; ``missing`` (the
name or the record type does not exist: NXDOMAIN or NODATA); ``incorrect``
(records exist but none matches); ``unknown`` (timeout, SERVFAIL, no
nameserver answered). A slow or broken nameserver must never look like a
missing record, which is the complaint users of other panels have.
"""

import dataclasses
import ipaddress
from concurrent.futures import ThreadPoolExecutor

import dns.exception
import dns.resolver

from .dkim import public_key_of

OK, MISSING, INCORRECT, UNKNOWN = "ok", "missing", "incorrect", "unknown"
# what a failing record makes of the domain's health
REQUIRED = ("MX", "SPF")
# the TXT text a domain's owner publishes at the domain to prove control
VERIFICATION_PREFIX = "emboux-verification="


@dataclasses.dataclass(frozen=True)
class Expectations:
    """What every hosted domain must publish (from the settings)."""

    mx_hosts: tuple = ("mx1.emboux.com",)
    spf_include: str = "include:emboux.com"
    dkim_selector: str = "emboux"
    dmarc_prefix: str = "v=DMARC1"


@dataclasses.dataclass(frozen=True)
class ResolverSettings:
    """Where and how patiently to ask: empty ``nameservers`` means the
    machine's resolver (/etc/resolv.conf)."""

    nameservers: tuple = ()
    port: int = 53
    timeout: float = 2.0
    lifetime: float = 4.0


@dataclasses.dataclass
class RecordCheck:
    record_type: str
    kind: str  # MX, SPF, DKIM, DMARC: which rule the record answers to
    name: str
    expected: str
    status: str = UNKNOWN
    found: str = ""

    def as_api(self):
        """The record as ``GET /domains/{name}/dns-check`` answers it."""
        return {
            "record_type": self.record_type,
            "name": self.name,
            "expected": self.expected,
            "status": self.status,
        }


@dataclasses.dataclass
class DomainCheck:
    name: str
    records: list

    @property
    def all_ok(self):
        return all(record.status == OK for record in self.records)

    @property
    def health(self):
        """One word for lists: ok, unknown (cannot tell), error (MX or SPF
        wrong: mail does not flow), warning (only DKIM or DMARC wrong)."""
        statuses = {record.status for record in self.records}
        if statuses == {OK}:
            return "ok"
        if UNKNOWN in statuses:
            return "unknown"
        failing = {r.kind for r in self.records if r.status in (MISSING, INCORRECT)}
        return "error" if failing & set(REQUIRED) else "warning"


def expected_records(domain, expectations, dkim=None):
    """The records ``domain`` must publish, unchecked. ``dkim`` lists the
    domain's own DKIM records as ``(record_type, name, expected)``: a TXT
    with its public key, or a provider's CNAMEs; without it any TXT key is
    expected at the configured selector."""
    records = [
        RecordCheck("MX", "MX", domain, host.rstrip(".").lower())
        for host in expectations.mx_hosts
    ]
    records.append(RecordCheck("TXT", "SPF", domain, expectations.spf_include))
    if not dkim:
        name = f"{expectations.dkim_selector}._domainkey.{domain}"
        dkim = [("TXT", name, "v=DKIM1")]
    records += [
        RecordCheck(
            record_type,
            "DKIM",
            name,
            expected.rstrip(".").lower() if record_type == "CNAME" else expected,
        )
        for record_type, name, expected in dkim
    ]
    records.append(
        RecordCheck("TXT", "DMARC", f"_dmarc.{domain}", expectations.dmarc_prefix)
    )
    return records


def verification_record(domain, token):
    """The TXT record that proves control of ``domain``, unchecked."""
    return RecordCheck("TXT", "VERIFY", domain, VERIFICATION_PREFIX + token)


class DnsChecker:
    """Checks domains against one set of expectations and nameservers."""

    def __init__(self, expectations=None, settings=None):
        self.expectations = expectations or Expectations()
        self.settings = settings or ResolverSettings()

    def _resolver(self):
        # one resolver per check: dnspython resolvers are not shared across
        # threads, and no cache may hide a record that was just published
        if self.settings.nameservers:
            resolver = dns.resolver.Resolver(configure=False)
            resolver.nameservers = list(self.settings.nameservers)
        else:
            resolver = dns.resolver.Resolver()
        resolver.port = self.settings.port
        resolver.timeout = self.settings.timeout
        resolver.lifetime = self.settings.lifetime
        resolver.cache = None
        return resolver

    @staticmethod
    def _lookup(resolver, name, rdtype):
        """(status, values): values of the answer, or why there is none."""
        try:
            answer = resolver.resolve(
                name, rdtype, search=False, raise_on_no_answer=True
            )
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return MISSING, []
        except dns.exception.DNSException:
            # timeout, SERVFAIL or REFUSED from every nameserver, ...
            return UNKNOWN, []
        values = []
        for rdata in answer:
            if rdtype == "MX":
                values.append(rdata.exchange.to_text(omit_final_dot=True).lower())
            elif rdtype == "TXT":
                values.append(b"".join(rdata.strings).decode("utf-8", "replace"))
            else:
                values.append(rdata.target.to_text(omit_final_dot=True).lower())
        return OK, values

    def check(self, domain, dkim=None):
        """A DomainCheck of ``domain`` (already normalised)."""
        resolver = self._resolver()
        records = expected_records(domain, self.expectations, dkim)
        answers = {}
        for record in records:
            key = (record.name, record.record_type)
            if key not in answers:
                answers[key] = self._lookup(resolver, record.name, record.record_type)
            status, values = answers[key]
            record.status, record.found = self._judge(record, status, values)
        return DomainCheck(domain, records)

    def check_verification(self, domain, token):
        """The ownership record of ``domain`` (a RecordCheck), checked now."""
        record = verification_record(domain, token)
        status, values = self._lookup(self._resolver(), domain, "TXT")
        record.status, record.found = self._judge(record, status, values)
        return record

    @staticmethod
    def _judge(record, status, values):
        if status != OK:
            return status, ""
        if record.kind == "VERIFY":
            # other TXT records (SPF, other services' proofs) live there too
            found = [v for v in values if v.startswith(VERIFICATION_PREFIX)]
            if not found:
                return MISSING, ""
            return (OK if record.expected in found else INCORRECT), " | ".join(found)
        if record.kind == "SPF":
            values = [value for value in values if value.lower().startswith("v=spf1")]
            if not values:
                return MISSING, ""
            found = " | ".join(values)
            # RFC 7208: more than one SPF record is a permanent error
            if len(values) > 1:
                return INCORRECT, found
            return (OK if record.expected in values[0].split() else INCORRECT), found
        found = " | ".join(values)
        if record.kind == "MX" or record.record_type == "CNAME":
            return (OK if record.expected in values else INCORRECT), found
        if record.kind == "DKIM":
            # the key published must be the one the mail server signs with
            wanted = public_key_of(record.expected)
            keys = [public_key_of(v) for v in values if v.startswith("v=DKIM1")]
            good = any(key and key == (wanted or key) for key in keys)
            return (OK if good else INCORRECT), found
        good = any(value.startswith(record.expected) for value in values)
        return (OK if good else INCORRECT), found

    def check_many(self, domains, workers=16, dkim=None):
        """Check many domains, ``workers`` at a time; returns them in order.

        ``dkim`` maps a domain to its DKIM records (see expected_records)."""
        dkim = dkim or {}
        if workers <= 1:
            return [self.check(domain, dkim.get(domain)) for domain in domains]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(
                pool.map(lambda domain: self.check(domain, dkim.get(domain)), domains)
            )


def parse_nameservers(text):
    """``"127.0.0.1, ::1"`` -> ``("127.0.0.1", "::1")``; an entry that is not
    an IP address raises ValueError naming it."""
    servers = tuple(part for part in (text or "").replace(",", " ").split() if part)
    for server in servers:
        try:
            ipaddress.ip_address(server)
        except ValueError as exc:
            raise ValueError(server) from exc
    return servers
