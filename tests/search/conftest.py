"""Single-threaded like tests/space (many tiny convolutions): the one fixture, shared."""

from tests.space.conftest import single_thread  # noqa: F401  (autouse, package scope)
