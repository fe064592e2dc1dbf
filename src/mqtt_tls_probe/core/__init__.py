"""The pure core: certificates, verification, classification tables, token claims.

Rule: no I/O and no clock. No module here imports socket, ssl, select,
paho, kubernetes, amqtt or the other adapters' libraries, and none reads the
time: ``now`` is a parameter. ``tests/test_layers.py`` enforces it.
"""
