"""The client package's version, in one place (the User-Agent of its requests)."""

__version__ = "0.1.0"
