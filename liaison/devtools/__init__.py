"""Developer tools: the end-to-end demo and the benchmarks, reached through ``liaison demo``
and ``liaison bench``. Nothing of the hub imports them but the CLI.
"""
