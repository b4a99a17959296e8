"""Changes queued before batches existed are sent one per batch, in their
order; a change refused then stays refused (it was already rolled back
locally, in the same request)."""


def migrate(cr, version):
    if not version:
        return
    cr.execute(
        "UPDATE emboux_mail_sync_event SET batch = 'before-18.0.1.2.0-' || id "
        "WHERE batch IS NULL"
    )
