"""``probe exporter``: Prometheus metrics of probes, per request (``/probe``) and in the background.

A front end like ``cli/``: it calls the connect orchestrator and the
``output.prometheus`` renderer, and owns the HTTP serving (prometheus_client
and wsgiref). Only ``probe exporter`` imports it: ``probe connect`` never pays
for prometheus_client.

- ``settings``, ``modules``, ``targets``: what is served, checked before binding;
- ``app``: the WSGI routes; ``probing``: the cap and the timed probe;
- ``loop``: the background rounds over a ``TargetSource``;
- ``collector``, ``own_metrics``: the prometheus_client side;
- ``server``: ``start_exporter`` and its ``stop``.
"""
