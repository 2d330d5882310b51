"""``python -m liaison``: the same as the ``liaison`` command."""

from liaison.cli import main

if __name__ == "__main__":
    main()
