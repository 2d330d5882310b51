"""Bundled data files (participants directory, routing rules), read with importlib.resources."""
