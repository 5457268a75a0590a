"""``python -m backoffice`` is ``bodycam-office``."""

import sys

from .cli import main

sys.exit(main())
