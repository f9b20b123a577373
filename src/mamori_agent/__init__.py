"""mamori-agent: collects evidence of a Linux host's security configuration for Mamori.

Standard library only, Python ≥ 3.9, one file to copy (``make agent`` builds
``dist/mamori-agent.pyz``). See docs/evidence.md for what it collects.
"""

__version__ = "0.1.0"
SCHEMA = "mamori.evidence/1"
