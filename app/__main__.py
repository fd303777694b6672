"""``python -m torchscope`` is the ``torchscope`` command."""

import sys

from torchscope.cli import main

sys.exit(main())
