"""mamori-agent: the standard-library host agent (arrives with the technical-verification issue)."""

__version__ = "0.0.0"
