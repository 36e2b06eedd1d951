"""``xsearch serve``: a JSON API and a web page over one index (needs the ``serve`` extra)."""
