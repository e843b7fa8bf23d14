"""`python -m tflstm ...` is the `tflstm` command."""

import sys

from tflstm.cli.main import main

sys.exit(main())
