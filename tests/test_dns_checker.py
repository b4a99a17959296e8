"""The DNS checker against a real authoritative server (Knot on loopback)."""

import sys

import dns_zones
import pytest
from conftest import REPO

sys.path.insert(0, str(REPO / "emboux_mail"))
from services import dns_checker  # noqa: E402

KINDS = ("MX", "SPF", "DKIM", "DMARC")


@pytest.fixture
def checker(dns_server):
    return dns_checker.DnsChecker(
        dns_checker.Expectations(mx_hosts=(dns_zones.MX,), spf_include=dns_zones.SPF),
        dns_checker.ResolverSettings(("127.0.0.1",), dns_server.port, 0.5, 1.0),
    )


@pytest.mark.parametrize("domain", sorted(dns_zones.CASES))
def test_each_zone_yields_its_statuses(checker, domain):
    result = checker.check(domain)
    statuses = {record.kind: record.status for record in result.records}
    assert tuple(statuses[kind] for kind in KINDS) == dns_zones.CASES[domain]
    assert result.health == dns_zones.HEALTH[domain]
    assert result.all_ok == (domain == f"good.{dns_zones.ZONE}")


def test_found_values_are_reported(checker):
    records = {r.kind: r for r in checker.check(f"wrongmx.{dns_zones.ZONE}").records}
    assert records["MX"].found == "mail.elsewhere.test"
    assert records["MX"].expected == dns_zones.MX
    spf = {r.kind: r for r in checker.check(f"twospf.{dns_zones.ZONE}").records}["SPF"]
    assert "include:other.test" in spf.found and dns_zones.SPF in spf.found


def test_timeout_is_unknown_never_missing(dns_server):
    """A nameserver that never answers: every record times out."""
    silent = dns_checker.DnsChecker(
        dns_checker.Expectations(mx_hosts=(dns_zones.MX,), spf_include=dns_zones.SPF),
        dns_checker.ResolverSettings(
            ("127.0.0.1",), dns_server.blackhole.port, 0.3, 0.6
        ),
    )
    result = silent.check(f"good.{dns_zones.ZONE}")
    assert {record.status for record in result.records} == {"unknown"}
    assert result.health == "unknown"


def test_many_domains_concurrently_match_sequential(checker):
    domains = sorted(dns_zones.CASES) * 4
    sequential = [r.health for r in checker.check_many(domains, workers=1)]
    concurrent = [r.health for r in checker.check_many(domains, workers=8)]
    assert concurrent == sequential == [dns_zones.HEALTH[d] for d in domains]


def test_zone_changes_are_seen_at_once(checker, dns_server):
    domain = f"nodkim.{dns_zones.ZONE}"
    assert checker.check(domain).health == "warning"
    published = dns_zones.dkim_line("nodkim", dns_zones.ANY_DKIM)
    dns_server.update(dns_zones.ZONE, dns_zones.ZONE_RECORDS + published)
    try:
        assert checker.check(domain).health == "ok"
    finally:
        dns_server.update(dns_zones.ZONE, dns_zones.ZONE_RECORDS)
