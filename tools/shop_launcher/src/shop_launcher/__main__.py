"""python -m shop_launcher: what `make run` runs."""

import sys

from shop_launcher.launcher import main

sys.exit(main())
