"""agriland: find arable farmland in satellite imagery."""

__version__ = "0.1.0"
