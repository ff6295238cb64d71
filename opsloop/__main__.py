"""`python -m opsloop` is the same as the `opsloop` command."""

from opsloop.cli import main

main()
