"""Lets ``python -m chatroom`` behave like the ``chatroom`` command."""

from chatroom.cli import main

main()
