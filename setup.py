"""The one thing pyproject.toml cannot say: the optional C extension of the step hot path.

Where no C compiler is found, the build goes on without it and `tflstm.runtime`
runs the same hot path in Python (`tflstm.runtime.executor.NATIVE` is None).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("tflstm.runtime._hotpath", ["tflstm/runtime/_hotpath.c"], optional=True)])
