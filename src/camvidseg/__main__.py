"""``python -m camvidseg``: the same as the ``camvidseg`` command."""

import sys

from camvidseg.cli import main

sys.exit(main())
