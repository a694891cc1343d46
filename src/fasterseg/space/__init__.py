"""The FasterSeg search space: operators (one table) shared by the supernet and derived nets."""
