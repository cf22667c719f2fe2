"""``mnist-lit serve``: trained models behind an HTTP API on LitServe, with a page to draw
digits on (``static/``)."""
