from . import assets
from . import portal
from . import portal_billing
from . import portal_webhooks
