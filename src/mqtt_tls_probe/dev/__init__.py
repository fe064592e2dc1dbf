"""The development harness: the quickstart-profile PKI, the amqtt broker and the demo.

Used by ``probe certs init``, ``probe broker``, ``probe demo`` and the test
suite; nothing in the probe's own path imports it.
"""
