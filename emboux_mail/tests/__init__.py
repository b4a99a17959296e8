from . import test_install
from . import test_domain
from . import test_mailbox
from . import test_alias
from . import test_api_key
from . import test_wizards
from . import test_backend_tour
from . import test_portal
