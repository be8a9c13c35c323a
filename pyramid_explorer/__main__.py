"""`python -m pyramid_explorer` is the same as the `pyramid-explorer` console script."""

import sys

from pyramid_explorer.cli import main

sys.exit(main())
