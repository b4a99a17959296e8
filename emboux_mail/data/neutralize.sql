-- A neutralized copy of the database (odoo-bin neutralize, a duplicate or a
-- restore with neutralization) talks to no upstream EmBoux API and keeps no
-- customer's token. Outgoing mail is stopped by base's and mail's own
-- neutralization already.

-- without its URL the connected mode is off: nothing is queued or sent
DELETE FROM ir_config_parameter
 WHERE key IN ('emboux_mail.upstream_url', 'emboux_mail.upstream_token');

-- no scheduled delivery of the outbox, no scheduled reconcile
UPDATE ir_cron
   SET active = false
 WHERE id IN (
       SELECT res_id
         FROM ir_model_data
        WHERE model = 'ir.cron'
          AND module = 'emboux_mail'
          AND name IN ('ir_cron_emboux_mail_sync', 'ir_cron_emboux_mail_reconcile')
);

-- tenant tokens, even encrypted, stay with the production database
UPDATE emboux_mail_api_key
   SET upstream_token_encrypted = NULL
 WHERE upstream_token_encrypted IS NOT NULL;
UPDATE emboux_mail_sync_event
   SET upstream_token_encrypted = NULL
 WHERE upstream_token_encrypted IS NOT NULL;
