"""Names of the prediction outputs, without torch: the command line lists them in its choices and
help, and must answer --help and usage errors before torch loads (the backends' names are in
:mod:`fasterseg.backends`)."""

OUTPUT_KINDS: tuple[str, ...] = ("labels", "label_ids", "color", "overlay")
