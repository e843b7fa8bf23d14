"""The demos behind `tflstm demo` / `make demo` (need TensorFlow): digits, and smartwatch motions."""
