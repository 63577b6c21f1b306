"""`python -m cdc.demo`: run the demo (see cdc/demo/steps.py)."""

import sys

from cdc.demo.steps import main

sys.exit(main())
