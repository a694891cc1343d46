"""Subcommands of the ``fasterseg`` command, one module each.

Each module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``;
it parses nothing itself beyond its arguments and calls one library function.
"""
