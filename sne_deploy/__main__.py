"""``python -m sne_deploy``: the same command line as ``sne-deploy``."""

import sys

from .cli import main

sys.exit(main())
