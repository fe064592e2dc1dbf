"""What a target that ran out of its whole-target deadline (``--target-timeout``) failed with.

Rule: the failure is the stage the probe was in when the deadline struck, with
that stage's timeout kind, so that it counts (and exits) like a stage that
timed out on its own; the message says it was the target's deadline.
"""

from __future__ import annotations

from mqtt_tls_probe.errors import ErrorInfo, ErrorKind, Stage

_KIND = {
    Stage.TRUST: ErrorKind.CLUSTER_UNREACHABLE,
    Stage.RESOLVE: ErrorKind.DNS_FAILURE,
    Stage.TCP: ErrorKind.CONNECT_TIMEOUT,
    Stage.TLS: ErrorKind.HANDSHAKE_TIMEOUT,
    Stage.VERIFY: ErrorKind.HANDSHAKE_TIMEOUT,  # verify dials again only to fetch the chain
    Stage.MQTT: ErrorKind.NO_CONNACK,
    Stage.ROUNDTRIP: ErrorKind.MESSAGE_NOT_RECEIVED,
}
_DOING = {
    Stage.TRUST: "reading the trust bundle",
    Stage.RESOLVE: "resolving the name",
    Stage.TCP: "connecting",
    Stage.TLS: "in the TLS handshake",
    Stage.VERIFY: "fetching the chain to explain a rejection",
    Stage.MQTT: "waiting for the MQTT session (CONNACK)",
    Stage.ROUNDTRIP: "in the round trip",
}


def deadline_error(stage: Stage, seconds: float) -> ErrorInfo:
    """The error of a probe cut by its target deadline while in ``stage``."""
    return ErrorInfo.of(
        _KIND[stage],
        f"The target did not finish within its deadline of {seconds:g} s "
        f"(--target-timeout): it was still {_DOING[stage]}.",
        "The broker is slow or hangs in this stage: check it, or raise --target-timeout "
        "(it defaults to the sum of the stage timeouts, --timeout per stage).",
        stage=stage,
    )
