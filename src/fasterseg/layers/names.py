"""The operator names of the search space, in architecture-parameter order, without torch:
genotypes and the command line need the names, not the modules (see :mod:`fasterseg.layers.ops`)."""

OP_NAMES: tuple[str, ...] = ("skip", "conv", "conv_downup", "conv_2x", "conv_2x_downup")
