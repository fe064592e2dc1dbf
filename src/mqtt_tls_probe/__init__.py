"""mqtt-tls-probe: can a client reach this MQTT broker over TLS, and if not, exactly why?"""

__version__ = "0.1.0"
