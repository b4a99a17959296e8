from . import emboux_mail_api
from . import emboux_mail_api_key
from . import emboux_mail_api_usage
from . import emboux_mail_api_auth_failure
from . import ir_http
from . import emboux_mail_server
from . import emboux_mail_outbound_counter
