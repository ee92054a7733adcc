"""ClutchCall Streams Python SDK. The API lives in :mod:`clutchcall.streams`."""

from clutchcall._native import __version__

__all__ = ["__version__"]
