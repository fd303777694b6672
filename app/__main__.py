"""``python -m app`` is the ``torchscope`` command."""

import sys

from app.cli import main

sys.exit(main())
