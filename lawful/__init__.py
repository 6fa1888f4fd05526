"""lawful: a privacy policy turned into running code."""

__version__ = "0.1.0"
