"""`python -m tflstm.serve MODEL ...` is `tflstm serve MODEL ...` (see `tflstm serve --help`)."""

import sys

from tflstm.cli.main import main

sys.exit(main(["serve", *sys.argv[1:]]))
