"""The contract's error kinds: each exists, sits in its stage, maps to its exit code, has a hint."""

from __future__ import annotations

from mqtt_tls_probe.errors import DEFAULT_HINTS, EXIT_CODES, KIND_STAGE, ErrorKind, Stage

# shared/spec/probe-cli.md, "Error kinds" and its "Additions" (malformed_packet, whose home is
# mqtt; the two tls kinds for a server the client cannot use), copied: a rename fails here.
CONTRACT = {
    "trust": "trust_bundle_not_found trust_bundle_key_missing trust_bundle_invalid "
    "cluster_unreachable cluster_forbidden kubeconfig_invalid",
    "resolve tcp": "dns_failure connection_refused connect_timeout network_unreachable",
    "tls": "not_tls peer_closed handshake_timeout protocol_version client_cert_required "
    "client_cert_rejected unsupported_server_key no_shared_cipher",
    "verify": "unknown_ca ca_rotated incomplete_chain cert_expired cert_not_yet_valid ca_expired "
    "hostname_mismatch self_signed_leaf ca_invalid",
    "mqtt": "protocol_unsupported bad_credentials not_authorized bad_auth_method "
    "client_id_rejected server_unavailable no_connack connection_dropped malformed_packet",
    "roundtrip": "subscribe_refused publish_refused message_not_received",
}
EXIT = {"trust": 3, "resolve tcp": 4, "tls": 5, "verify": 6, "mqtt": 7, "roundtrip": 8}


def test_every_contract_kind_exists_in_its_stage_with_its_exit_code() -> None:
    listed = set()
    for stages, kinds in CONTRACT.items():
        for name in kinds.split():
            kind = ErrorKind(name)
            listed.add(kind)
            assert str(KIND_STAGE[kind]) in stages.split(), kind
            assert EXIT_CODES[KIND_STAGE[kind]] == EXIT[stages], kind
    assert listed == set(ErrorKind)


def test_every_kind_has_a_concrete_hint() -> None:
    for kind in ErrorKind:
        hint = DEFAULT_HINTS[kind]
        assert len(hint) > 30, kind
        assert hint[0].isupper(), kind


def test_stages_are_in_contract_order() -> None:
    order = ["trust", "resolve", "tcp", "tls", "verify", "mqtt", "roundtrip"]
    assert [str(s) for s in Stage] == order


def test_an_error_belongs_to_the_stage_it_happened_in() -> None:
    """malformed_packet: exit 7 during CONNECT, 8 during the round trip."""
    from mqtt_tls_probe.errors import ErrorInfo

    assert ErrorInfo.of(ErrorKind.MALFORMED_PACKET, "m").exit_code == 7
    assert ErrorInfo.of(ErrorKind.MALFORMED_PACKET, "m", stage=Stage.ROUNDTRIP).exit_code == 8
