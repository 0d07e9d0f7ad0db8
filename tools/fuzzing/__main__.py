"""The worker: ``python -m tools.fuzzing CASES RESULTS`` (started by :func:`tools.fuzzing.run`)."""

import sys

from tools.fuzzing.harness import worker

worker(*sys.argv[1:3])
