"""``python -m mplint``: the same as the ``mplint`` command.

``-m`` puts the working directory first on ``sys.path``; inside a linted tree its own
``dataclasses.py`` or ``typing.py`` would then shadow the standard library and run when mplint
imports it. The package imports nothing before this point, so dropping that entry here keeps
the promise that linting never executes the code it reads.
"""

import os
import sys

if not sys.flags.safe_path and sys.path and sys.path[0] in ("", os.getcwd()):
    del sys.path[0]

from mplint.cli import main

raise SystemExit(main())
