"""vidcolor: colorize black-and-white video."""

__version__ = "0.1.0"
