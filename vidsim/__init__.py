"""vidsim: find similar video clips by sound and picture."""

__version__ = "0.1.0"
