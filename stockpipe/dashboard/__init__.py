"""`stockpipe dashboard`: the pipeline live in a browser (charts, alerts, health, lag).

``state``: what is shown, in bounded memory (pure Python); ``reader``: one incremental look at the
pipeline a second; ``app``: the page, its HTTP API and the server-sent events; ``server``: binding
and serving. Needs the ``dashboard`` extra (Starlette, uvicorn, plotly for its bundled plotly.js).
"""
