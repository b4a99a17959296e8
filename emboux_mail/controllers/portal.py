"""The customer portal of mail hosting, at ``/my/email``.

A tenant's portal users list their domains, open one to see its mailboxes,
aliases, quota, sending figures and the DNS records to publish, create and
delete mailboxes and aliases, change mailbox passwords, sending limits and
how long mail is kept, see the storage their mailboxes use (with a banner
naming those near their quota), and manage their API keys.

Reads run in the portal user's own environment, so that the record rules of
``emboux_mail_portal_security.xml`` decide what is visible, and every search
adds the tenant's scope as well. A change is made only on a record found that
way (anything else answers 404), with ``sudo()`` (portal users have no write
access) and through the models' own methods, so that their rules (quotas,
names, uniqueness) decide; a refusal is shown as the rule's message.

Every form posts, then is answered by a 303 to a page (post/redirect/get):
a reload of that page repeats nothing. What the page shows once (the
outcome, a refusal with what was typed, a new password or token) waits for
it in the session, under a random id the URL carries (``_emboux_redirect``):
never in a URL nor in the database, and taken out as soon as it is shown.
A destructive action asks first, naming what it acts on: a GET of its URL is
its confirmation page, which the portal script replaces by a dialog. Any
other form's URL opened with a GET leads to the page of its form.
"""

import functools
import secrets
import time

from werkzeug.exceptions import HTTPException, NotFound

from odoo import http
from odoo.exceptions import UserError, ValidationError
from odoo.http import request
from odoo.tools import formatLang

from odoo.addons.portal.controllers.portal import CustomerPortal
from odoo.addons.portal.controllers.portal import pager as portal_pager

from ..models.emboux_mail_domain import OUTBOUND_CUSTOMER
from ..models.emboux_mail_mailbox import WARNING_LEVELS
from ..models.emboux_mail_outbound_counter import BOUNCE_MIN_VOLUME, BOUNCE_RATE_LIMIT
from ..services import dkim, dns_checker

NAME_MAX_LENGTH = 100
# the largest value of an integer column (a limit)
PG_INT_MAX = 2**31 - 1
DNS_STATE_BADGES = {
    "ok": "text-bg-success",
    "warning": "text-bg-warning",
    "error": "text-bg-danger",
    "unknown": "text-bg-secondary",
    "unchecked": "text-bg-light border",
}
RECORD_STATUS_BADGES = {
    "ok": "text-bg-success",
    "missing": "text-bg-danger",
    "incorrect": "text-bg-warning",
    "unknown": "text-bg-secondary",
    "unchecked": "text-bg-light border",
}
KEY_STATE_BADGES = {
    "active": "text-bg-success",
    "expired": "text-bg-secondary",
    "revoked": "text-bg-danger",
}
# the most mailboxes a storage banner names, per warning level
STORAGE_BANNER_MAX = 10
# the value a customer types in its DNS zone for an expected record
SPF_RECORD = "v=spf1 {} ~all"
DMARC_RECORD = "v=DMARC1; p=none"
# where the pages' one-time messages wait in the session, how many at most
# (the oldest are dropped) and for how many seconds: a page never opened (a
# tab closed at once) leaves no password behind for long
FLASH_KEY = "emboux_portal_flash"
FLASH_KEPT = 10
FLASH_LIFETIME = 600


def form_route(route, page):
    """Route a portal form, which acts on a POST (with its CSRF token) only.

    A GET of its URL (a bookmark, an address typed again, a page restored by
    the browser) does nothing and is sent to the page holding the form:
    ``page``, formatted with the route's arguments, instead of a bare 405.
    """

    def decorator(endpoint):
        @functools.wraps(endpoint)
        def handler(self, *args, **kwargs):
            if request.httprequest.method != "POST":
                note = request.env._(
                    "This address takes this page's forms only: nothing was changed."
                )
                return self._emboux_redirect(page.format(**kwargs), note=note)
            return endpoint(self, *args, **kwargs)

        return http.route(
            route,
            type="http",
            auth="user",
            methods=["GET", "POST"],
            website=True,
        )(handler)

    return decorator


class EmbouxMailPortal(CustomerPortal):
    # -- home -----------------------------------------------------------------
    @http.route()
    def home(self, **kw):
        """The home page warns of near-full mailboxes. Not in
        ``_prepare_home_portal_values``: /my/counters answers those values
        as JSON, and asks only for counts."""
        response = super().home(**kw)
        if request.env["emboux.mail.mailbox"].has_access("read"):
            response.qcontext.update(self._emboux_storage_values())
        return response

    def _prepare_home_portal_values(self, counters):
        values = super()._prepare_home_portal_values(counters)
        if "emboux_domain_count" in counters:
            Domain = request.env["emboux.mail.domain"]
            values["emboux_domain_count"] = (
                Domain.search_count(self._emboux_scope())
                if Domain.has_access("read")
                else 0
            )
        if "emboux_api_key_count" in counters:
            Key = request.env["emboux.mail.api.key"]
            values["emboux_api_key_count"] = (
                Key.search_count(self._emboux_key_scope())
                if Key.has_access("read")
                else 0
            )
        return values

    # -- scope and lookups ----------------------------------------------------
    def _emboux_tenant(self):
        """The commercial partner whose hosting the user manages."""
        return request.env.user.commercial_partner_id

    def _emboux_scope(self):
        # "=", as the record rules and the REST API: a subsidiary that is a
        # tenant of its own is not part of its parent's hosting
        return [("partner_id", "=", self._emboux_tenant().id)]

    def _emboux_running_grace(self):
        """The tenant's grace period, while it runs (for the page's banner)."""
        graces = self._emboux_tenant().sudo().emboux_grace_ids
        return graces.filtered(lambda g: g.state in ("open", "suspended"))[:1]

    def _emboux_storage_values(self):
        """The storage banner's values: per warning level, highest first, the
        tenant's mailboxes at that share of their quota or more (below the
        higher level). Two queries, which read the mailboxes and their
        domains too, however many mailboxes the tenant has."""
        Mailbox = request.env["emboux.mail.mailbox"]
        warnings, higher = [], []
        for level in WARNING_LEVELS:
            mailboxes = Mailbox.search_fetch(
                [*self._emboux_scope(), ("used_percent", ">=", level), *higher],
                ["email", "domain_id"],
                order="used_percent desc, email",
                limit=STORAGE_BANNER_MAX + 1,
            )
            if mailboxes:
                warnings.append(
                    {
                        "level": level,
                        "danger": level == WARNING_LEVELS[0],
                        "mailboxes": mailboxes[:STORAGE_BANNER_MAX],
                        "more": len(mailboxes) > STORAGE_BANNER_MAX,
                    }
                )
            higher = [("used_percent", "<", level)]
        return {"emboux_storage_warnings": warnings}

    def _emboux_key_scope(self):
        return [*self._emboux_scope(), ("is_master", "=", False)]

    def _emboux_domain(self, domain_id):
        """The user's domain ``domain_id``; 404 for any other id."""
        domain = request.env["emboux.mail.domain"].search(
            [("id", "=", domain_id), *self._emboux_scope()], limit=1
        )
        if not domain:
            raise NotFound()
        return domain

    @staticmethod
    def _emboux_domain_url(domain):
        """The domain's page, where its forms lead back."""
        return f"/my/email/domain/{domain.id}"

    def _emboux_child(self, model, record_id, domain):
        """The mailbox or alias ``record_id`` of ``domain``; 404 otherwise."""
        record = request.env[model].search(
            [("id", "=", record_id), ("domain_id", "=", domain.id)], limit=1
        )
        if not record:
            raise NotFound()
        return record

    def _emboux_key(self, key_id):
        key = (
            request.env["emboux.mail.api.key"]
            .with_context(active_test=False)
            .search([("id", "=", key_id), *self._emboux_key_scope()], limit=1)
        )
        if not key:
            raise NotFound()
        return key

    # -- answers: one-time messages, redirects, confirmations -----------------
    @staticmethod
    def _emboux_redirect(url, **flash):
        """Answer a form with a 303 to the page ``url``, which shows ``flash``
        once: ``done``, ``note``, ``error`` (message, status), ``secret``
        (title, value) and ``form`` (what was typed, never a password).

        They wait in the session under a random id, the only thing the URL
        carries; a reload of the page neither acts again nor shows them."""
        now = time.time()
        waiting = sorted(
            (
                (flash_id, kept)
                for flash_id, kept in (request.session.get(FLASH_KEY) or {}).items()
                if now - kept["at"] < FLASH_LIFETIME
            ),
            key=lambda item: item[1]["at"],
        )[-(FLASH_KEPT - 1) :]
        flash_id = secrets.token_urlsafe(16)
        request.session[FLASH_KEY] = {**dict(waiting), flash_id: {**flash, "at": now}}
        return request.redirect(f"{url}?flash={flash_id}")

    @staticmethod
    def _emboux_flash(flash_id):
        """What the redirect to this page left to show (``_emboux_redirect``),
        taken out of the session: shown once, never on a reload, nor after
        waiting too long."""
        flashes = dict(request.session.get(FLASH_KEY) or {})
        flash = flashes.pop(flash_id, None) if flash_id else None
        if flash is None:
            return {}
        request.session[FLASH_KEY] = flashes
        return flash if time.time() - flash["at"] < FLASH_LIFETIME else {}

    @staticmethod
    def _emboux_render(template, values, flash=None):
        """Render a page with what its redirect left to show once: a page
        showing a refusal answers with the refusal's status, one showing a
        secret is never stored by a cache."""
        flash = flash or {}
        error = flash.get("error")
        values.update(
            emboux_done=flash.get("done"),
            emboux_note=flash.get("note"),
            emboux_error=error and error[0],
            emboux_secret=flash.get("secret"),
            emboux_form=flash.get("form") or {},
        )
        response = request.render(template, values, status=error[1] if error else 200)
        if flash.get("secret"):
            response.headers["Cache-Control"] = "no-store"
        return response

    @staticmethod
    def _emboux_ask(action, record):
        """What the destructive ``action`` asks before it acts on ``record``,
        naming it: on its confirmation page and in the portal script's
        dialog (``data-emboux-*`` attributes)."""
        env = request.env
        match action:
            case "mailbox_delete":
                return {
                    "ask": env._("Delete the mailbox %(email)s?", email=record.email),
                    "detail": env._(
                        "It will no longer receive mail and nobody will be able to "
                        "log in to it. This cannot be undone."
                    ),
                    "confirm": env._("Delete the mailbox"),
                }
            case "mailbox_password":
                return {
                    "ask": env._(
                        "Change the password of %(email)s?", email=record.email
                    ),
                    "detail": env._(
                        "The current password stops working at once: every mail "
                        "application using it needs the new one."
                    ),
                    "confirm": env._("Change password"),
                }
            case "alias_delete":
                return {
                    "ask": env._(
                        "Delete the alias %(address)s?", address=record.source
                    ),
                    "detail": env._(
                        "Mail sent to it will no longer be forwarded. This cannot "
                        "be undone."
                    ),
                    "confirm": env._("Delete the alias"),
                }
            case "key_revoke":
                return {
                    "ask": env._("Revoke the API key %(name)s?", name=record.name),
                    "detail": env._(
                        "Applications using it lose access at once, and it cannot "
                        "be used again."
                    ),
                    "confirm": env._("Revoke the key"),
                }
            case "webhook_rotate":
                return {
                    "ask": env._(
                        "Make a new signing secret for %(url)s?", url=record.url
                    ),
                    "detail": env._(
                        "It is shown once. Deliveries are signed with both secrets "
                        "for 24 hours, then with the new one only: give it to your "
                        "receiver in time."
                    ),
                    "confirm": env._("Make a new secret"),
                }
            case "webhook_delete":
                return {
                    "ask": env._("Delete the endpoint %(url)s?", url=record.url),
                    "detail": env._(
                        "It will hear no more events, and its deliveries are "
                        "deleted with it. This cannot be undone."
                    ),
                    "confirm": env._("Delete the endpoint"),
                }
        raise ValueError(action)

    def _emboux_confirm(self, action, record, back, domain=None):
        """The confirmation page of a destructive action, at its own URL
        (a GET of it), where its form posts; ``back`` is where it came from."""
        values = self._prepare_portal_layout_values()
        values.update(
            page_name="emboux_confirm",
            emboux_domain=domain,
            emboux_question=self._emboux_ask(action, record),
            emboux_action=request.httprequest.path,
            emboux_back=back,
        )
        return self._emboux_render("emboux_mail.portal_email_confirm", values)

    # -- rules and errors -----------------------------------------------------
    @classmethod
    def _emboux_attempt(cls, action, page):
        """Run ``action`` in a savepoint: ``(result, None)``, or ``(None,
        (message, status))`` when a rule refused it (its changes undone).
        In connected mode the upstream refuses after commit: the answer is
        then a redirect to ``page`` saying so (``_emboux_refused``)."""
        request.env["emboux.mail.sync.delivery"]._emboux_on_refusal(
            functools.partial(cls._emboux_refused, page)
        )
        try:
            with request.env.cr.savepoint():
                return action(), None
        except (UserError, ValidationError) as error:
            return None, (error.args[0], getattr(error, "status", 400))

    @classmethod
    def _emboux_refused(cls, page, error):
        """The answer to a change the upstream refused (to raise): ``page``,
        showing why."""
        message = "\n".join(
            [
                error.args[0],
                request.env._("Nothing was changed: your change was taken back."),
            ]
        )
        status = getattr(error, "status", 400)
        return HTTPException(
            response=cls._emboux_redirect(page, error=(message, status))
        )

    @staticmethod
    def _emboux_password_error(password, confirm):
        """Why a typed password cannot be used, or None; the policy itself
        is the mailbox model's (refused in ``_emboux_attempt``)."""
        env = request.env
        if not password:
            return env._("Type a password twice, or let us generate one."), 422
        if password != confirm:
            return env._("The two passwords are not the same."), 422
        return None

    @staticmethod
    def _emboux_password_secret(mailbox, password):
        title = request.env._("The password of %(email)s", email=mailbox.email)
        return {"title": title, "value": password}

    def _emboux_new_password(self, post):
        """``(password, generated, error)`` from a password form."""
        if post.get("generate"):
            Mailbox = request.env["emboux.mail.mailbox"].sudo()
            return Mailbox._emboux_generate_password(), True, None
        password = post.get("password") or ""
        error = self._emboux_password_error(password, post.get("password_confirm"))
        return password, False, error

    @staticmethod
    def _emboux_password_min():
        return request.env["emboux.mail.mailbox"].sudo()._emboux_password_min_length()

    # -- domains --------------------------------------------------------------
    @http.route(
        ["/my/email", "/my/email/page/<int:page>"],
        type="http",
        auth="user",
        methods=["GET"],
        website=True,
    )
    def portal_my_email(self, page=1, flash=None, **kw):
        return self._emboux_render_domains(page, self._emboux_flash(flash))

    def _emboux_render_domains(self, page, flash):
        Domain = request.env["emboux.mail.domain"]
        domain_filter = self._emboux_scope()
        pager = portal_pager(
            url="/my/email",
            total=Domain.search_count(domain_filter),
            page=page,
            step=self._items_per_page,
        )
        domains = Domain.search(
            domain_filter,
            order="name",
            limit=self._items_per_page,
            offset=pager["offset"],
        )
        # every domain of a tenant shares its quotas: one look-up per tenant
        limits = {
            tenant.id: tenant._emboux_limits()["mailboxes_per_domain"]
            for tenant in domains.partner_id.sudo()
        }
        values = self._prepare_portal_layout_values()
        values.update(
            page_name="emboux_email",
            default_url="/my/email",
            pager=pager,
            emboux_domains=domains,
            emboux_limits=limits,
            emboux_dns_badges=DNS_STATE_BADGES,
            emboux_grace=self._emboux_running_grace(),
            emboux_tenant_used_mb=self._emboux_tenant().sudo().emboux_used_mb,
            **self._emboux_storage_values(),
        )
        return self._emboux_render("emboux_mail.portal_my_email_domains", values, flash)

    @form_route("/my/email/domain/new", page="/my/email")
    def portal_my_email_domain_create(self, **post):
        """Add a domain of the user's company: it starts unverified, and the
        domain's page shows the record that proves control of it."""
        name = (post.get("name") or "").strip()
        form = {"name": name}
        tenant = self._emboux_tenant()
        if not tenant.emboux_partner_ref:
            error = request.env._(
                "Your account has no mail hosting: it cannot have domains."
            )
            return self._emboux_redirect("/my/email", error=(error, 403), form=form)
        Domain = request.env["emboux.mail.domain"].sudo()
        domain, error = self._emboux_attempt(
            lambda: Domain._emboux_create_for_customer(tenant, name), "/my/email"
        )
        if error:
            return self._emboux_redirect("/my/email", error=error, form=form)
        return self._emboux_redirect(
            self._emboux_domain_url(domain),
            done=request.env._(
                "Domain added. Publish the TXT record below to verify it."
            ),
        )

    @form_route(
        "/my/email/domain/<int:domain_id>/verify",
        page="/my/email/domain/{domain_id}",
    )
    def portal_my_email_domain_verify(self, domain_id, **post):
        domain = self._emboux_domain(domain_id)
        page = self._emboux_domain_url(domain)
        results, error = self._emboux_attempt(
            lambda: domain.sudo()._emboux_verify(), page
        )
        if error:
            return self._emboux_redirect(page, error=error)
        if domain.verified:
            done = request.env._("%(domain)s is verified.", domain=domain.name)
            return self._emboux_redirect(page, done=done)
        record = results.get(domain.sudo())
        error = request.env._(
            "The TXT record was not found yet (%(status)s). DNS changes can take a "
            "while to show: try again later, we also look for it regularly.",
            status=domain._emboux_label(
                "verification_status", record.status if record else None
            ),
        )
        return self._emboux_redirect(page, error=(error, 200))

    @http.route(
        "/my/email/domain/<int:domain_id>",
        type="http",
        auth="user",
        methods=["GET"],
        website=True,
    )
    def portal_my_email_domain(self, domain_id, flash=None, **kw):
        domain = self._emboux_domain(domain_id)
        return self._emboux_render_domain(domain, self._emboux_flash(flash))

    def _emboux_render_domain(self, domain, flash):
        values = self._prepare_portal_layout_values()
        # the columns with the ids: mailboxes the storage banner read first
        # are no reason for another query; the usage is read in one, for all
        mailboxes = request.env["emboux.mail.mailbox"].search_fetch(
            [("domain_id", "=", domain.id)], ["email", "quota_mb"], order="email"
        )
        aliases = request.env["emboux.mail.alias"].search(
            [("domain_id", "=", domain.id)], order="source"
        )
        used, limit = domain.mailbox_count, domain.sudo().mailbox_limit
        values.update(
            page_name="emboux_domain",
            emboux_domain=domain,
            emboux_mailboxes=mailboxes,
            emboux_aliases=aliases,
            emboux_used=used,
            emboux_limit=limit,
            emboux_full=bool(limit) and used >= limit,
            emboux_percent=min(100, round(100 * used / limit)) if limit else 0,
            emboux_dns_records=self._emboux_dns_rows(domain),
            emboux_sending=self._emboux_sending_usage(domain),
            emboux_sending_fields=self._emboux_sending_fields(
                domain, flash.get("form") or {}
            ),
            emboux_bounce_guard=self._emboux_bounce_guard(),
            emboux_dns_badges=DNS_STATE_BADGES,
            emboux_record_badges=RECORD_STATUS_BADGES,
            emboux_password_min=self._emboux_password_min(),
            emboux_warning_levels=WARNING_LEVELS,
            emboux_retention_ceiling=domain.partner_id.sudo()._emboux_plan_value(
                "max_retention_days"
            ),
            emboux_ask=self._emboux_ask,
            **self._emboux_storage_values(),
        )
        return self._emboux_render("emboux_mail.portal_my_email_domain", values, flash)

    def _emboux_dns_rows(self, domain):
        """The records to publish: those of the last check with their status,
        else the expected ones, not checked yet."""
        env = request.env
        if domain.dns_record_ids:
            labels = dict(
                env["emboux.mail.dns.record"]
                ._fields["status"]
                ._description_selection(env)
            )
            records = [
                (record, record.status, labels[record.status], record.found)
                for record in domain.dns_record_ids
            ]
        else:
            checker = domain.sudo()._emboux_dns_checker()
            expected = dns_checker.expected_records(
                domain.name, checker.expectations, domain.sudo()._emboux_dkim_records()
            )
            label = env._("Not checked")
            records = [(record, "unchecked", label, "") for record in expected]
        rows = []
        for record, status, label, found in records:
            value = self._emboux_publish_value(record)
            rows.append(
                {
                    "type": record.record_type,
                    "kind": record.kind,
                    "name": record.name,
                    "value": value,
                    "zone": self._emboux_zone_value(record.record_type, value),
                    "status": status,
                    "label": label,
                    "found": found,
                }
            )
        return rows

    @staticmethod
    def _emboux_zone_value(record_type, value):
        """A TXT value too long for one DNS string (a DKIM key), as the
        quoted strings a zone file and some DNS panels want; else None."""
        if record_type != "TXT" or not value or len(value) <= dkim.TXT_CHUNK:
            return None
        return " ".join(f'"{part}"' for part in dkim.txt_strings(value))

    @staticmethod
    def _emboux_publish_value(record):
        """What to type in the zone for an expected record; None for a DKIM
        key of a checker without the domain's own key."""
        if record.kind == "SPF":
            return SPF_RECORD.format(record.expected)
        if record.kind == "DMARC":
            return DMARC_RECORD
        if record.kind == "DKIM" and record.record_type == "TXT":
            return record.expected if "p=" in record.expected else None
        return record.expected

    @staticmethod
    def _emboux_sending_usage(domain):
        """The figures of the domain's Sending card: what was used of each
        limit, formatted, with the percentage its bar shows."""
        env = request.env

        def usage(key, label, used, limit, percent, unit=""):
            return {
                "key": key,
                "label": label,
                "used": formatLang(env, used, digits=1 if unit else 0) + unit,
                "limit": limit and formatLang(env, limit, digits=0) + unit,
                "percent": min(100, round(percent)),
                "full": percent >= 100,
            }

        unit = " " + env._("MB")
        return [
            usage(
                "daily",
                env._("Sent today"),
                domain.outbound_sent_today,
                domain.outbound_daily_limit,
                domain.outbound_daily_usage,
            ),
            usage(
                "monthly",
                env._("Sent this month"),
                domain.outbound_sent_month,
                domain.outbound_monthly_limit,
                domain.outbound_monthly_usage,
            ),
            usage(
                "transfer",
                env._("Transferred this month"),
                domain.transfer_used_mb,
                domain.transfer_monthly_mb,
                domain.transfer_usage,
                unit,
            ),
        ]

    @staticmethod
    def _emboux_sending_fields(domain, form):
        """The inputs of the sending limits form: the value typed (after a
        refusal) or the current one, and the plan's ceiling (0: none)."""
        env = request.env
        tenant = domain.partner_id.sudo()
        inputs = []
        for name in OUTBOUND_CUSTOMER:
            ceiling = tenant._emboux_plan_value(f"max_{name}")
            inputs.append(
                {
                    "name": name,
                    "label": domain._fields[name]._description_string(env),
                    "value": form.get(name, domain[name]),
                    "ceiling": ceiling,
                    "ceiling_text": formatLang(env, ceiling, digits=0),
                }
            )
        return inputs

    @staticmethod
    def _emboux_bounce_guard():
        """``(rate, volume)`` past which the bounce guard stops a domain."""
        params = request.env["ir.config_parameter"].sudo()
        return (
            float(params.get_param(*BOUNCE_RATE_LIMIT)),
            int(params.get_param(*BOUNCE_MIN_VOLUME)),
        )

    # -- sending ----------------------------------------------------------------
    @form_route(
        "/my/email/domain/<int:domain_id>/sending",
        page="/my/email/domain/{domain_id}",
    )
    def portal_my_email_sending(self, domain_id, **post):
        """Change the domain's message limits; the plan's ceilings are the
        domain model's rule (``_emboux_set_outbound``)."""
        domain = self._emboux_domain(domain_id)
        page = self._emboux_domain_url(domain)
        form = {name: post[name].strip() for name in OUTBOUND_CUSTOMER if name in post}
        values = {}
        for name, text in form.items():
            value = self._emboux_whole_number(text)
            if value is None:
                error = request.env._(
                    "%(field)s: type a whole number of messages.",
                    field=domain._fields[name]._description_string(request.env),
                )
                return self._emboux_redirect(page, error=(error, 422), form=form)
            # only what changed: a limit the operator set beyond the plan's
            # ceiling stays as it is when the customer changes the other one
            if value != domain[name]:
                values[name] = value
        _dummy, error = self._emboux_attempt(
            lambda: domain.sudo()._emboux_set_outbound(values, by="customer"), page
        )
        if error:
            return self._emboux_redirect(page, error=error, form=form)
        done = request.env._("The sending limits were changed.")
        return self._emboux_redirect(page, done=done)

    # -- retention ------------------------------------------------------------
    @form_route(
        "/my/email/domain/<int:domain_id>/retention",
        page="/my/email/domain/{domain_id}",
    )
    def portal_my_email_retention(self, domain_id, **post):
        """Change how many days the domain keeps its mail; the plan's ceiling
        is the domain model's rule (``_emboux_set_retention``)."""
        domain = self._emboux_domain(domain_id)
        page = self._emboux_domain_url(domain)
        text = (post.get("retention_days") or "").strip()
        form = {"retention_days": text}
        days = self._emboux_whole_number(text)
        if days is None:
            if self._emboux_whole_number(text.removeprefix("-")) is not None:
                error = request.env._("Keep mail: a number of days cannot be negative.")
            else:
                error = request.env._("Keep mail: type a whole number of days.")
            return self._emboux_redirect(page, error=(error, 422), form=form)
        _dummy, error = self._emboux_attempt(
            lambda: domain.sudo()._emboux_set_retention(days, "customer"), page
        )
        if error:
            return self._emboux_redirect(page, error=error, form=form)
        done = request.env._("The time mail is kept was changed.")
        return self._emboux_redirect(page, done=done)

    @staticmethod
    def _emboux_whole_number(text):
        """``text`` as a number an integer column holds, else None."""
        if not (text.isascii() and text.isdigit()) or int(text) > PG_INT_MAX:
            return None
        return int(text)

    # -- mailboxes ------------------------------------------------------------
    @form_route(
        "/my/email/domain/<int:domain_id>/mailbox/new",
        page="/my/email/domain/{domain_id}",
    )
    def portal_my_email_mailbox_create(self, domain_id, **post):
        domain = self._emboux_domain(domain_id)
        page = self._emboux_domain_url(domain)
        local_part = (post.get("local_part") or "").strip()
        if local_part.lower().endswith("@" + domain.name):
            local_part = local_part[: -len(domain.name) - 1]
        form = {"local_part": local_part}
        email = f"{local_part}@{domain.name}"
        password, generated, error = self._emboux_new_password(post)
        if error:
            return self._emboux_redirect(page, error=error, form=form)
        Mailbox = request.env["emboux.mail.mailbox"].sudo()
        mailbox, error = self._emboux_attempt(
            lambda: Mailbox.create(
                {"email": email, "domain_id": domain.id, "password": password}
            ),
            page,
        )
        if error:
            return self._emboux_redirect(page, error=error, form=form)
        return self._emboux_redirect(
            page,
            done=request.env._("Mailbox %(email)s created.", email=mailbox.email),
            secret=generated and self._emboux_password_secret(mailbox, password),
        )

    @http.route(
        "/my/email/domain/<int:domain_id>/mailbox/<int:mailbox_id>/password",
        type="http",
        auth="user",
        methods=["GET", "POST"],
        website=True,
    )
    def portal_my_email_mailbox_password(
        self, domain_id, mailbox_id, flash=None, **post
    ):
        """The form of a new password (GET), and the change (POST)."""
        domain = self._emboux_domain(domain_id)
        mailbox = self._emboux_child("emboux.mail.mailbox", mailbox_id, domain)
        if request.httprequest.method != "POST":
            return self._emboux_render_password(
                domain, mailbox, self._emboux_flash(flash)
            )
        form_page = request.httprequest.path
        password, generated, error = self._emboux_new_password(post)
        if error:
            return self._emboux_redirect(form_page, error=error)
        _dummy, error = self._emboux_attempt(
            lambda: mailbox.sudo().write({"password": password}), form_page
        )
        if error:
            return self._emboux_redirect(form_page, error=error)
        return self._emboux_redirect(
            self._emboux_domain_url(domain),
            done=request.env._(
                "The password of %(email)s was changed.", email=mailbox.email
            ),
            secret=generated and self._emboux_password_secret(mailbox, password),
        )

    def _emboux_render_password(self, domain, mailbox, flash):
        values = self._prepare_portal_layout_values()
        values.update(
            page_name="emboux_mailbox_password",
            emboux_domain=domain,
            emboux_mailbox=mailbox,
            emboux_password_min=self._emboux_password_min(),
            emboux_ask=self._emboux_ask,
        )
        return self._emboux_render(
            "emboux_mail.portal_my_email_mailbox_password", values, flash
        )

    @http.route(
        "/my/email/domain/<int:domain_id>/mailbox/<int:mailbox_id>/delete",
        type="http",
        auth="user",
        methods=["GET", "POST"],
        website=True,
    )
    def portal_my_email_mailbox_delete(self, domain_id, mailbox_id, **post):
        domain = self._emboux_domain(domain_id)
        mailbox = self._emboux_child("emboux.mail.mailbox", mailbox_id, domain)
        page = self._emboux_domain_url(domain)
        if request.httprequest.method != "POST":
            return self._emboux_confirm("mailbox_delete", mailbox, page, domain)
        email = mailbox.email
        _dummy, error = self._emboux_attempt(lambda: mailbox.sudo().unlink(), page)
        if error:
            return self._emboux_redirect(page, error=error)
        done = request.env._("Mailbox %(email)s deleted.", email=email)
        return self._emboux_redirect(page, done=done)

    # -- aliases --------------------------------------------------------------
    @form_route(
        "/my/email/domain/<int:domain_id>/alias/new",
        page="/my/email/domain/{domain_id}",
    )
    def portal_my_email_alias_create(self, domain_id, **post):
        domain = self._emboux_domain(domain_id)
        page = self._emboux_domain_url(domain)
        catch_all = bool(post.get("catch_all"))
        local_part = "" if catch_all else (post.get("alias_local_part") or "").strip()
        if local_part.lower().endswith("@" + domain.name):
            local_part = local_part[: -len(domain.name) - 1]
        destination = (post.get("destination") or "").strip()
        form = {
            "alias_local_part": local_part,
            "catch_all": catch_all,
            "destination": destination,
        }
        if not catch_all and not local_part:
            error = request.env._(
                "Type the address of the alias, or tick Catch-all to receive "
                "the mail of every address of the domain."
            )
            return self._emboux_redirect(page, error=(error, 422), form=form)
        Alias = request.env["emboux.mail.alias"].sudo()
        alias, error = self._emboux_attempt(
            lambda: Alias.create(
                {
                    "source": f"{local_part}@{domain.name}",
                    "destination": destination,
                    "domain_id": domain.id,
                }
            ),
            page,
        )
        if error:
            return self._emboux_redirect(page, error=error, form=form)
        done = request.env._("Alias %(address)s created.", address=alias.source)
        return self._emboux_redirect(page, done=done)

    @http.route(
        "/my/email/domain/<int:domain_id>/alias/<int:alias_id>/delete",
        type="http",
        auth="user",
        methods=["GET", "POST"],
        website=True,
    )
    def portal_my_email_alias_delete(self, domain_id, alias_id, **post):
        domain = self._emboux_domain(domain_id)
        alias = self._emboux_child("emboux.mail.alias", alias_id, domain)
        page = self._emboux_domain_url(domain)
        if request.httprequest.method != "POST":
            return self._emboux_confirm("alias_delete", alias, page, domain)
        source = alias.source
        _dummy, error = self._emboux_attempt(lambda: alias.sudo().unlink(), page)
        if error:
            return self._emboux_redirect(page, error=error)
        done = request.env._("Alias %(address)s deleted.", address=source)
        return self._emboux_redirect(page, done=done)

    # -- audit trail ----------------------------------------------------------
    @http.route(
        ["/my/email/audit", "/my/email/audit/page/<int:page>"],
        type="http",
        auth="user",
        methods=["GET"],
        website=True,
    )
    def portal_my_email_audit(self, page=1, **kw):
        """The changes of the tenant's hosting, newest first. Portal users
        have no access to the trail itself: it is read with ``sudo``, on the
        tenant's entries only, by whoever may read the tenant's domains."""
        request.env["emboux.mail.domain"].check_access("read")
        Audit = request.env["emboux.mail.audit"].sudo()
        scope = self._emboux_scope()
        pager = portal_pager(
            url="/my/email/audit",
            total=Audit.search_count(scope),
            page=page,
            step=self._items_per_page,
        )
        entries = Audit.search(
            scope, limit=self._items_per_page, offset=pager["offset"]
        )
        values = self._prepare_portal_layout_values()
        values.update(
            page_name="emboux_audit",
            default_url="/my/email/audit",
            pager=pager,
            emboux_entries=entries,
        )
        return request.render("emboux_mail.portal_my_email_audit", values)

    # -- API keys -------------------------------------------------------------
    @http.route(
        "/my/email/keys", type="http", auth="user", methods=["GET"], website=True
    )
    def portal_my_email_keys(self, flash=None, **kw):
        keys = (
            request.env["emboux.mail.api.key"]
            .with_context(active_test=False)
            .search(self._emboux_key_scope())
        )
        values = self._prepare_portal_layout_values()
        values.update(
            page_name="emboux_keys",
            emboux_keys=keys,
            emboux_tenant=self._emboux_tenant(),
            emboux_key_badges=KEY_STATE_BADGES,
            emboux_ask=self._emboux_ask,
        )
        return self._emboux_render(
            "emboux_mail.portal_my_email_keys", values, self._emboux_flash(flash)
        )

    @form_route("/my/email/keys/new", page="/my/email/keys")
    def portal_my_email_key_create(self, **post):
        env = request.env
        page = "/my/email/keys"
        tenant = self._emboux_tenant()
        name = (post.get("name") or "").strip()
        form = {"name": name}
        if not tenant.emboux_partner_ref:
            error = env._("Your account has no mail hosting: it cannot have API keys.")
            return self._emboux_redirect(page, error=(error, 403), form=form)
        if not name or len(name) > NAME_MAX_LENGTH:
            error = env._(
                "Name the key (at most %(length)s characters), for instance after "
                "the application that will use it.",
                length=NAME_MAX_LENGTH,
            )
            return self._emboux_redirect(page, error=(error, 422), form=form)
        vals = {"name": name, "partner_id": tenant.id}
        vals.update(self._emboux_key_quotas(tenant))
        Key = env["emboux.mail.api.key"].sudo()
        result, error = self._emboux_attempt(lambda: Key._emboux_generate(vals), page)
        if error:
            return self._emboux_redirect(page, error=error, form=form)
        key, token = result
        return self._emboux_redirect(
            page,
            done=env._("API key %(name)s created.", name=key.name),
            secret={
                "title": env._("The token of the API key %(name)s", name=key.name),
                "value": token,
            },
        )

    @staticmethod
    def _emboux_key_quotas(tenant):
        """Quotas for a key the customer makes: when one of its active keys
        has quotas of its own, the tenant's current limits, so that a new key
        never loosens what the operator set; else none (the plan's apply)."""
        active = tenant.sudo()._emboux_active_keys()
        if not any(active.mapped("quota_override")):
            return {}
        return tenant.sudo()._emboux_limits()

    @http.route(
        "/my/email/keys/<int:key_id>/revoke",
        type="http",
        auth="user",
        methods=["GET", "POST"],
        website=True,
    )
    def portal_my_email_key_revoke(self, key_id, **post):
        key = self._emboux_key(key_id)
        page = "/my/email/keys"
        if request.httprequest.method != "POST":
            return self._emboux_confirm("key_revoke", key, page)
        _dummy, error = self._emboux_attempt(lambda: key.sudo().action_revoke(), page)
        if error:
            return self._emboux_redirect(page, error=error)
        done = request.env._("API key %(name)s revoked.", name=key.name)
        return self._emboux_redirect(page, done=done)
