"""`python -m bot` is `aura-sicd`."""

import sys

from bot.cli import main

sys.exit(main())
