"""Connected mode: import what exists only upstream, report the rest.

A run reads the upstream lists (domains, mailboxes, aliases) with the
master token, and each tenant key's own token (kept encrypted in
``upstream_token_encrypted``) to learn which tenant owns a domain
(``GET /domains/`` answers ``{id, name, created_at}`` only). What exists
only upstream is created here with the context flag ``emboux_sync_skip``,
so that the sync hooks do not send it back. What exists only here, or
differs, is reported with counts on the run's record, with tokens masked;
nothing is ever deleted: an operator decides. An object whose changes have
not settled upstream (still in the outbox, or sent without an answer) is
left for a later run: what the upstream shows of it may be about to change.
"""

import logging

from odoo import api, fields, models

from ..exceptions import EmbouxUserError
from ..services import emboux_client as ec
from ..services.redaction import redact

_logger = logging.getLogger(__name__)
PAGE = 500


def _all_items(lister, **kwargs):
    """Every item of a paged list."""
    items = []
    while True:
        page = lister(limit=PAGE, offset=len(items), **kwargs)
        items.extend(page.items)
        if not page.items or len(items) >= page.total:
            return items


def _domain_values(domain):
    """A local domain as the upstream lists it (``GET /domains/``)."""
    return {
        "owner": domain.partner_id.emboux_partner_ref or None,
        "verified": domain.verified,
        "suspended": domain.suspended,
        "suspension_reason": domain.suspension_reason or None,
        "parent_domain": domain.parent_id.name or None,
        "is_wildcard": domain.is_wildcard,
    }


KEY_FIELDS = (
    "domains_allowed",
    "mailboxes_per_domain",
    "aliases_per_mailbox",
    "active",
)


class _Run:
    """The comparison of one run: counts and report lines."""

    def __init__(self, env, unsettled):
        self.env = env
        self.unsettled = unsettled  # idempotency keys of the outbox
        self.lines = []
        self.counts = dict.fromkeys(
            (
                "imported_domains",
                "imported_mailboxes",
                "imported_aliases",
                "import_failures",
                "local_only",
                "differences",
            ),
            0,
        )

    def attempt(self, kind, label, create):
        """Import one object in a savepoint; a refusal is reported."""
        try:
            with self.env.cr.savepoint():
                create()
            self.counts[f"imported_{kind}"] += 1
            self.lines.append(f"Imported {label}")
        except Exception as error:  # noqa: BLE001 - reported, the run goes on
            self.counts["import_failures"] += 1
            self.lines.append(f"Could not import {label}: {error}")

    def settled(self, model, names):
        """``names`` of ``model`` without the unsettled ones (reported)."""
        kept = set()
        for name in names:
            if f"{model}:{name}" in self.unsettled:
                self.lines.append(f"{name}: changes on their way, left for later")
            else:
                kept.add(name)
        return kept

    def local_only(self, label, keys):
        for key in sorted(keys):
            self.counts["local_only"] += 1
            self.lines.append(f"{label} {key} exists only here")

    def compare(self, label, here, upstream):
        """One report line and one difference per field that differs; a
        field the upstream does not answer is not compared."""
        for field, value in here.items():
            if field in upstream and upstream[field] != value:
                self.counts["differences"] += 1
                self.lines.append(
                    f"{label}: {field} here {value}, upstream {upstream[field]}"
                )

    def domains(self, upstream, owners):
        Domain = self.env["emboux.mail.domain"]
        Partner = self.env["res.partner"]
        names = {item["name"] for item in upstream}
        local = {d.name: d for d in Domain.search([])}
        settled = self.settled(Domain._name, names | set(local))
        # parents before their subdomains
        for item in sorted(upstream, key=lambda i: (i["name"].count("."), i["name"])):
            name = item["name"]
            if name not in settled:
                continue
            ref = owners.get(name)
            if name in local:
                here = _domain_values(local[name])
                there = dict(item)
                # an owner is known upstream only through its tenant's keys
                if owners.complete and (ref or here["owner"] in owners.read):
                    there["owner"] = ref
                self.compare(f"Domain {name}", here, there)
                continue
            partner = Partner.search([("emboux_partner_ref", "=", ref)], limit=1)
            vals = {"name": name, "partner_id": ref and partner.id or False}
            self.attempt("domains", f"domain {name}", lambda v=vals: Domain.create(v))
        self.local_only("Domain", (set(local) - names) & settled)

    def mailboxes(self, upstream):
        Mailbox = self.env["emboux.mail.mailbox"]
        local = {m.email: m for m in Mailbox.search([])}
        emails = {item["email"] for item in upstream}
        settled = self.settled(Mailbox._name, emails | set(local))
        for item in sorted(upstream, key=lambda i: i["email"]):
            email = item["email"]
            if email not in settled:
                continue
            if email in local:
                here = {"quota_mb": local[email].quota_mb}
                self.compare(f"Mailbox {email}", here, item)
                continue
            self.attempt(
                "mailboxes",
                f"mailbox {email}",
                lambda e=email: Mailbox.create({"email": e}),
            )
        self.local_only("Mailbox", (set(local) - emails) & settled)

    def aliases(self, upstream):
        Alias = self.env["emboux.mail.alias"]
        local = {a.source: a for a in Alias.search([])}
        sources = {item["source"] for item in upstream}
        settled = self.settled(Alias._name, sources | set(local))
        for item in upstream:
            source, destination = item["source"], item.get("destination")
            if source not in settled:
                continue
            here = local.get(source)
            if here:
                self.compare(f"Alias {source}", {"destination": here.destination}, item)
                continue
            if not destination:
                self.counts["import_failures"] += 1
                self.lines.append(f"Could not import alias {source}: no destination")
                continue
            self.attempt(
                "aliases",
                f"alias {source}",
                lambda s=source, d=destination: Alias.create(
                    {"source": s, "destination": d}
                ),
            )
        self.local_only("Alias", (set(local) - sources) & settled)

    def keys(self, settings):
        """``settings``: ``{key: what the upstream answers for its token}``."""
        for key, there in settings.items():
            here = {name: key[name] for name in KEY_FIELDS}
            label = f"API key of {key.partner_ref or key.display_name}"
            self.compare(label, here, there)


class _Progress:
    """How far a run is, told to the scheduler (``ir.cron._notify_progress``
    does nothing outside a scheduled run): each tenant read, then each kind
    of object compared, is one step."""

    def __init__(self, env, steps):
        self.cron = env["ir.cron"]
        self.steps = steps
        self.done = 0

    def step(self):
        self.done += 1
        self.cron._notify_progress(done=self.done, remaining=self.steps - self.done)

    def finish(self):
        """Nothing left: the run stopped early, and the scheduler must not
        call the job again at once."""
        self.cron._notify_progress(done=self.done, remaining=0)


class _Owners(dict):
    """``{domain name: partner_ref}``; ``read``: the tenants whose keys
    listed their domains; ``complete`` when every key could be read
    (otherwise owners are not compared)."""

    complete = True

    def __init__(self):
        super().__init__()
        self.read = set()


class EmbouxMailReconcile(models.Model):
    """One run of the import and reconcile with the upstream EmBoux API."""

    _name = "emboux.mail.reconcile"
    _description = "Mail hosting: reconcile with the upstream API"
    _order = "id desc"

    name = fields.Char(default=lambda self: fields.Datetime.now(), readonly=True)
    state = fields.Selection(
        [("done", "Done"), ("failed", "Failed")], default="done", readonly=True
    )
    imported_domains = fields.Integer(readonly=True)
    imported_mailboxes = fields.Integer(readonly=True)
    imported_aliases = fields.Integer(readonly=True)
    import_failures = fields.Integer(readonly=True)
    local_only = fields.Integer(
        readonly=True, help="Objects of this database unknown upstream."
    )
    differences = fields.Integer(
        readonly=True, help="Objects on both sides whose data differ."
    )
    pending = fields.Integer(
        readonly=True, help="Changes still waiting in the outbox during the run."
    )
    report = fields.Text(readonly=True)
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company
    )

    # -- actions -----------------------------------------------------------------
    @api.model
    def action_reconcile(self):
        """Run now (manager's action) and show the run's report."""
        self.check_access("read")
        run = self._emboux_reconcile()
        return {
            "type": "ir.actions.act_window",
            "res_model": self._name,
            "res_id": run.id,
            "view_mode": "form",
            "target": "current",
        }

    @api.model
    def action_reconcile_now(self):
        """Run now from the menu: a notification gives the run's counts,
        then its report opens."""
        report = self.action_reconcile()
        run = self.browse(report["res_id"])
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": run._emboux_title(),
                "message": run._emboux_summary(),
                "type": "success" if run.state == "done" else "danger",
                "sticky": run.state != "done",
                "next": report,
            },
        }

    def _emboux_title(self):
        self.ensure_one()
        if self.state == "failed":
            return self.env._("Reconcile failed")
        return self.env._("Reconcile done")

    def _emboux_summary(self):
        """The run's counts, in the user's language."""
        self.ensure_one()
        if self.state == "failed":
            return self.env._("The upstream could not be read: see the report.")
        return self.env._(
            "Imported domains: %(domains)s, mailboxes: %(mailboxes)s, aliases: "
            "%(aliases)s; failed imports: %(failures)s. Only here: %(local)s; "
            "different: %(differences)s; changes still in the outbox: "
            "%(pending)s.",
            domains=self.imported_domains,
            mailboxes=self.imported_mailboxes,
            aliases=self.imported_aliases,
            failures=self.import_failures,
            local=self.local_only,
            differences=self.differences,
            pending=self.pending,
        )

    @api.model
    def _cron_reconcile(self):
        if not self.env["emboux.mail.sync.mixin"]._emboux_sync_configured():
            self.env["ir.cron"]._notify_progress(done=0, remaining=0)
            return
        self._emboux_reconcile()

    # -- the run -------------------------------------------------------------------
    @api.model
    def _emboux_reconcile(self):
        mixin = self.env["emboux.mail.sync.mixin"]
        if not mixin._emboux_sync_configured():
            raise EmbouxUserError(
                self.env._("No upstream EmBoux API is configured (Settings).")
            )
        keys = (
            self.env["emboux.mail.api.key"]
            .sudo()
            .with_context(active_test=False)
            .search([])
            .filtered("upstream_token_encrypted")
        )
        # before the upstream is read: a change settling meanwhile may or may
        # not show in what it answers
        unsettled = self.env["emboux.mail.sync.event"].sudo()._emboux_unsettled()
        # the tenants' keys, then domains, mailboxes, aliases and keys compared
        progress = _Progress(self.env, len(keys.filtered("partner_ref")) + 4)
        client = mixin._emboux_sync_client()
        try:
            upstream_domains = _all_items(client.list_domains)
            owners, settings = self._emboux_upstream_tenants(client, keys, progress)
            mailboxes = _all_items(client.list_mailboxes)
            aliases = _all_items(client.list_aliases)
        except (ec.EmbouxApiError, EmbouxUserError) as error:
            # no answer, or a tenant token this server cannot decrypt
            _logger.warning("upstream reconcile: cannot read the upstream: %s", error)
            progress.finish()
            return self.sudo().create(
                {
                    "state": "failed",
                    "report": redact(f"Cannot read the upstream: {error}"),
                }
            )
        finally:
            client.close()
        env = (
            self.sudo()
            .with_context(
                emboux_sync_skip=True,
                tracking_disable=True,
                mail_create_nolog=True,
                mail_notrack=True,
                active_test=False,
            )
            .env
        )
        pending = env["emboux.mail.sync.event"].search_count(
            [("state", "=", "pending")]
        )
        run = _Run(env, unsettled)
        run.domains(upstream_domains, owners)
        progress.step()
        run.mailboxes(mailboxes)
        progress.step()
        run.aliases(aliases)
        progress.step()
        run.keys({key.with_env(env): there for key, there in settings.items()})
        progress.step()
        counts = run.counts
        summary = (
            "Imported {imported_domains} domains, {imported_mailboxes} mailboxes, "
            "{imported_aliases} aliases ({import_failures} failed); "
            "{local_only} only here, {differences} different".format(**counts)
        )
        if pending:
            summary += f"; {pending} changes still in the outbox"
        _logger.info("upstream reconcile: %s", summary)
        return self.sudo().create(
            dict(
                counts, pending=pending, report=redact("\n".join([summary, *run.lines]))
            )
        )

    @api.model
    def _emboux_upstream_tenants(self, master, keys, progress):
        """``({domain name: partner_ref}, {key: its upstream settings})``,
        from each tenant key's own list of domains and its usage; a step of
        ``progress`` per key."""
        owners, settings = _Owners(), {}
        keys = keys.filtered("partner_ref")
        mixin = self.env["emboux.mail.sync.mixin"]
        for index, key in enumerate(keys):
            ref = key.partner_ref
            token = mixin._emboux_decrypt(key.upstream_token_encrypted)
            client = mixin._emboux_sync_client(token=token)
            try:
                settings[key] = master.api_key_usage(token)
                for item in _all_items(client.list_domains):
                    owners.setdefault(item["name"], ref)
                owners.read.add(ref)
            except (ec.EmbouxForbidden, ec.EmbouxNotFound):
                # revoked or expired: it cannot list; ownership stays unknown
                _logger.info("upstream reconcile: key of %s refused", ref)
                owners.complete = False
            finally:
                client.close()
            _logger.info(
                "upstream reconcile: tenant %s read (%s/%s)",
                ref,
                index + 1,
                len(keys),
            )
            progress.step()
        return owners, settings
