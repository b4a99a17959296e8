from . import emboux_mail_domain_transfer
from . import emboux_mail_mailbox_password
from . import emboux_mail_api_key_create
from . import emboux_mail_tenant_rename
from . import emboux_mail_grace_extend
from . import emboux_mail_subscription_change
