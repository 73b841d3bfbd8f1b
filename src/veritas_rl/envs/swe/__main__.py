"""``python -m veritas_rl.envs.swe download ...``: pre-download SWE-bench rows (see :func:`main`)."""

import sys

from veritas_rl.envs.swe.rows import main

sys.exit(main())
