"""``fasterseg serve``: a model behind HTTP, with request batching, metrics and a web page.

Pieces, one job each: :mod:`.config` (settings), :mod:`.decode` (request body -> RGB image, with
the limits that keep bad input from costing memory), :mod:`.batching` (requests that arrive
together run as one batch, off the event loop), :mod:`.metrics` (Prometheus text),
:mod:`.service` (the model, its deploy path and its card), :mod:`.app` (the ASGI routes and the
page in ``static/``). Needs the ``serve`` extra: ``pip install 'fasterseg[serve]'``.
"""
