"""The `tflstm` command: one module per subcommand, `main` dispatches (see `tflstm --help`)."""
