"""The co-search of teacher and student over the supernet: losses, steps and the loop."""
