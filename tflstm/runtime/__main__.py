"""`python -m tflstm.runtime MODEL ...` is `tflstm run MODEL ...` (see `tflstm run --help`).

Kept for scripts written before the `tflstm` command; it imports what `tflstm run`
does: the runtime, never TensorFlow.
"""

import sys

from tflstm.cli.main import main

sys.exit(main(["run", *sys.argv[1:]]))
