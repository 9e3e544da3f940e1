"""`python -m kiebot` is `kiebot`."""

import sys

from kiebot.cli import main

sys.exit(main())
