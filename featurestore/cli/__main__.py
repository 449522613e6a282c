"""``python -m featurestore.cli``: the ``featurestore`` command without the console script."""

import sys

from featurestore.cli import main

sys.exit(main())
