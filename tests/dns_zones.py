"""The zones of the DNS tests: one domain per case."""

ZONE = "dnstest.example"
MX = "mx1.emboux.test"
SPF = "include:emboux.test"
SELECTOR = "emboux"


def _records(name, mx=MX, spf=(f"v=spf1 {SPF} ~all",), dkim=True, dmarc=True):
    lines = [f"{name} MX 10 {mx}."]
    lines += [f'{name} TXT "{value}"' for value in spf]
    if dkim:
        lines.append(
            f'{SELECTOR}._domainkey.{name} TXT "v=DKIM1; k=rsa; p=MIGfMA0GCSqG"'
        )
    if dmarc:
        lines.append(f'_dmarc.{name} TXT "v=DMARC1; p=quarantine"')
    return "\n".join(lines) + "\n"


# domain -> the status expected for MX, SPF, DKIM, DMARC
CASES = {
    f"good.{ZONE}": ("ok", "ok", "ok", "ok"),
    f"nodkim.{ZONE}": ("ok", "ok", "missing", "ok"),
    f"wrongmx.{ZONE}": ("incorrect", "ok", "ok", "ok"),
    f"twospf.{ZONE}": ("ok", "incorrect", "ok", "ok"),
    f"nx.{ZONE}": ("missing", "missing", "missing", "missing"),
    "silent.example": ("unknown", "unknown", "unknown", "unknown"),
}
HEALTH = {
    f"good.{ZONE}": "ok",
    f"nodkim.{ZONE}": "warning",
    f"wrongmx.{ZONE}": "error",
    f"twospf.{ZONE}": "error",
    f"nx.{ZONE}": "error",
    "silent.example": "unknown",
}

ZONE_RECORDS = (
    _records("good")
    + _records("nodkim", dkim=False)
    + _records("wrongmx", mx="mail.elsewhere.test")
    + _records("twospf", spf=(f"v=spf1 {SPF} ~all", "v=spf1 include:other.test -all"))
)


DKIM_PUBLISHED = f'{SELECTOR}._domainkey.nodkim TXT "v=DKIM1; k=rsa; p=MIGfMA0GCSqG"\n'
"""The record the nodkim customer publishes later."""


def use_test_zones(rpc, dns_server, **extra):
    """Point an Odoo server's DNS checks (over JSON-RPC) at the Knot server
    and at what the test zones publish."""
    settings = {
        "nameservers": "127.0.0.1",
        "port": dns_server.port,
        "timeout": 0.5,
        "lifetime": 1.0,
        "mx_hosts": MX,
        "spf_include": SPF,
        "dkim_selector": SELECTOR,
        **extra,
    }
    for key, value in settings.items():
        rpc.call(
            "ir.config_parameter", "set_param", f"emboux_mail.dns_{key}", str(value)
        )
