"""``python -m pipeline.cli``: the ``shorewatch`` command."""

import sys

from pipeline.cli import main

sys.exit(main())
