"""``python -m renyicert.cli`` (and ``torchrun -m renyicert.cli``): the ``renyicert`` command."""

import sys

from .main import main

sys.exit(main())
