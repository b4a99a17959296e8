"""The zones of the DNS tests: one domain per case."""

ZONE = "dnstest.example"
MX = "mx1.emboux.test"
SPF = "include:emboux.test"
SELECTOR = "emboux"


# any key: what the checker accepts when it is not told the domain's own
ANY_DKIM = "v=DKIM1; k=rsa; p=MIGfMA0GCSqG"


def txt(value):
    """``value`` as a zone file's TXT data, split in strings of 255."""
    return " ".join(f'"{value[i : i + 255]}"' for i in range(0, len(value), 255))


def dkim_line(name, value):
    """The DKIM record of host ``name`` of the zone."""
    return f"{SELECTOR}._domainkey.{name} TXT {txt(value)}\n"


def _records(name, mx=MX, spf=(f"v=spf1 {SPF} ~all",), dkim=ANY_DKIM, dmarc=True):
    lines = [f"{name} MX 10 {mx}."]
    lines += [f'{name} TXT "{value}"' for value in spf]
    text = "\n".join(lines) + "\n"
    if dkim:
        text += dkim_line(name, dkim)
    if dmarc:
        text += f'_dmarc.{name} TXT "v=DMARC1; p=quarantine"\n'
    return text


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


def zone_records(keys=None):
    """The test zone. ``keys`` maps a host (``good``) to the DKIM record its
    Odoo domain signs with, published instead of any key."""
    keys = keys or {}
    return (
        _records("good", dkim=keys.get("good", ANY_DKIM))
        + _records("nodkim", dkim=None)
        + _records(
            "wrongmx", mx="mail.elsewhere.test", dkim=keys.get("wrongmx", ANY_DKIM)
        )
        + _records(
            "twospf",
            spf=(f"v=spf1 {SPF} ~all", "v=spf1 include:other.test -all"),
            dkim=keys.get("twospf", ANY_DKIM),
        )
    )


ZONE_RECORDS = zone_records()


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
