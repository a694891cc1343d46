"""The layers' tests run many tiny convolutions, like the supernet's: the same single-thread setting."""

from tests.space.conftest import single_thread  # noqa: F401  (a package-scoped autouse fixture)
