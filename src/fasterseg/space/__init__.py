"""The FasterSeg search space: the supernet over the operators of ``fasterseg.layers``."""
