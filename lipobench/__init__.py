"""lipobench: a plugin-based benchmark of particle localization in cryo-EM micrographs of LNPs."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("lipobench")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
