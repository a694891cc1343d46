"""Run cityscapesscripts' own evaluator (the definition of the benchmark numbers) on PNG lists."""

from __future__ import annotations

import numpy as np


def official_evaluate(pred_files, gt_files) -> dict:
    """``evaluateImgLists`` with console output and JSON export off; returns its result dict.

    The script still calls ``np.in1d``, which numpy 2.4 removed; for the duration of the call it
    gets the equivalent ``np.isin(...).ravel()``.
    """
    from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as ev

    shim = not hasattr(np, "in1d")
    if shim:
        np.in1d = lambda a, b, invert=False: np.isin(a, b, invert=invert).ravel()
    try:
        ev.args.quiet = True
        ev.args.JSONOutput = False
        ev.args.evalInstLevelScore = True
        ev.args.evalPixelAccuracy = False
        return ev.evaluateImgLists([str(p) for p in pred_files], [str(g) for g in gt_files], ev.args)
    finally:
        if shim:
            del np.in1d
