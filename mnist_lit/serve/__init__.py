"""``mnist-lit serve``: trained models behind an HTTP API on LitServe, with a page to draw
digits on.

:mod:`~mnist_lit.serve.inputs` checks and prepares what a client sends,
:mod:`~mnist_lit.serve.middleware` applies it to every ``POST /predict`` and serves the
page, :mod:`~mnist_lit.serve.api` runs the models in LitServe's workers,
:mod:`~mnist_lit.serve.command` holds the options. The page itself is ``static/``.
"""
