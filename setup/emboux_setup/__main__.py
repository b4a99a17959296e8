"""Entry point of ``./setup/run`` and ``./setup/test`` (stdlib only).

It runs on the machine's own ``python3`` before any virtualenv exists, so
nothing here may import a third-party package.
"""

import os
import sys

# ``python3 setup/emboux_setup`` puts this folder first on sys.path, where its
# modules would shadow top-level names (``odoo`` must be found only as Odoo).
sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from emboux_setup.cli import main  # noqa: E402

sys.exit(main(sys.argv[1:]))
