"""The optional C accelerator; every other piece of metadata lives in pyproject.toml.

``optional=True`` makes a failed compile (no C compiler, no Python headers) a
warning: the package then installs without ``mint.websocket._speedups`` and
masks in pure Python.
"""

from setuptools import Extension, setup  # type: ignore[import-untyped, unused-ignore]

setup(
    ext_modules=[
        Extension(
            "mint.websocket._speedups",
            ["src/mint/websocket/_speedups.c"],
            optional=True,
        )
    ]
)
