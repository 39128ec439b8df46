"""deepreco: machine-learning reconstruction of particle tracks and calorimeter showers."""

try:  # written by setuptools-scm from the git tag when the package is built or installed
    from ._version import version as __version__
except ImportError:  # a source tree never installed: the installed metadata, if any
    from importlib.metadata import PackageNotFoundError, version

    try:
        __version__ = version("deepreco")
    except PackageNotFoundError:
        __version__ = "0+unknown"
