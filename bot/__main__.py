"""`python -m bot` is `kiebot`."""

import sys

from bot.cli import main

sys.exit(main())
