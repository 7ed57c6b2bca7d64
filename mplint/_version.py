"""The release, importable by every layer without importing the package face."""

__version__ = "0.2.0"
