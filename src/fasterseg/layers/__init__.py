"""Building blocks below everything else: the operator names and modules and the slimmable layers
that the supernet (``space``) and the derived networks (``nets``) are both made of."""
