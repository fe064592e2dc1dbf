"""Adapters: the I/O at the edges (sockets, ssl, paho, the Kubernetes client, local files).

Rule: each adapter turns what its library raises into a ``ProbeError`` whose
kind comes from ``core.classify``; none renders output or decides policy.
"""
