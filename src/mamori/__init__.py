"""Mamori: a Cyber-Essentials-style cyber-hygiene scheme for a whole sector."""

__version__ = "0.1.0"
