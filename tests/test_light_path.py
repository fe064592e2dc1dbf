"""connect's light path: a verified success reported without ``cryptography``, in the same words.

A CA file of PEM blocks only is read by ``core.lightcert``; a comment line in
it sends the same certificates down the ``cryptography`` path. Both runs, on
the same mosquitto listener, must render the same report, whatever the chain
(intermediates, expiry soon, a CA a strict verifier refuses); and a text
success on the light path must not import ``cryptography`` at all.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mqtt_tls_probe.dev.pki import (
    CertAndKey,
    create_intermediate_ca,
    create_root_ca,
    issue_server_certificate,
)

from .brokers import mosquitto
from .helpers import probe, write_pem
from .servers import write_chain

NAMES = ["localhost", "127.0.0.1"]


def _pem(*items: CertAndKey | bytes) -> bytes:
    return b"".join(i if isinstance(i, bytes) else i.cert_pem() for i in items)


def _chains() -> Iterator[tuple[str, list[CertAndKey], bytes]]:
    """(case, chain as the server sends it, the CA file)."""
    root = create_root_ca()
    leaf = issue_server_certificate(root, NAMES)
    yield "quickstart root", [leaf], _pem(root)
    middle = create_intermediate_ca(root, "Broker Intermediate CA")
    via_middle = issue_server_certificate(middle, NAMES)
    yield "intermediate", [via_middle, middle], _pem(root)
    # A CA file with the intermediate and its root: the chain is anchored at the first.
    yield "intermediate and root trusted", [via_middle, middle], _pem(middle, root)
    yield "intermediate and root trusted, leaf alone", [via_middle], _pem(middle, root)
    yield "leaf and root trusted", [leaf], _pem(leaf, root)
    yield "two roots", [leaf], _pem(create_root_ca("Another Root CA"), root)
    yield "leaf expires soon", [issue_server_certificate(root, NAMES, days=3)], _pem(root)
    short = create_root_ca("Short-lived Root CA", days=2)
    yield "anchor expires soon", [issue_server_certificate(short, NAMES)], _pem(short)
    bare = create_root_ca("Root CA without keyUsage", with_key_usage=False)
    yield "strict verifier refuses", [issue_server_certificate(bare, NAMES)], _pem(bare)
    # PEM layouts OpenSSL's own reader refuses: both paths hand it re-encoded PEM.
    joined = root.cert_pem().rstrip(b"\n") + middle.cert_pem()  # cat of a file without a newline
    yield "END and BEGIN on one line", [via_middle, middle], joined
    indented = b"  " + root.cert_pem()
    yield "indented BEGIN", [leaf], indented
    lines = root.cert_pem().split(b"\n")
    yield "blank line in a body", [leaf], b"\n".join([*lines[:3], b"", *lines[3:]])


CASES = list(_chains())


def _normalized(text: str, directory: Path) -> str:
    text = re.sub(r" +\d+\.\d ms", " N ms", text)  # stage timings, and their padding
    return re.sub(r'"ms": [\d.]+', '"ms": N', text).replace(str(directory), "DIR")


# The cases whose CA file the light reader reads, and whose chain it checks itself.
LIGHT_ALL_THE_WAY = {
    "quickstart root",
    "intermediate",
    "intermediate and root trusted",
    "intermediate and root trusted, leaf alone",
    "two roots",
    "leaf expires soon",
    "anchor expires soon",
}


@pytest.mark.parametrize(("case", "chain", "ca_file"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("flags", [[], ["-v"], ["--output", "json"]], ids=["text", "v", "json"])
def test_the_light_and_the_full_path_say_the_same(
    case: str, chain: list[CertAndKey], ca_file: bytes, flags: list[str], tmp_path: Path
) -> None:
    cert_file, key_file = write_chain(tmp_path, chain)
    light, full = tmp_path / "light", tmp_path / "full"
    light.mkdir()
    full.mkdir()
    (light / "ca.crt").write_bytes(ca_file)
    (full / "ca.crt").write_bytes(b"# the same CAs, behind a comment line\n" + ca_file)
    listener = [f"certfile {cert_file}", f"keyfile {key_file}", "allow_anonymous true"]
    with mosquitto(tmp_path / "broker", listener) as port:
        runs = [
            probe("connect", f"localhost:{port}", "--ca-file", str(d / "ca.crt"), *flags)
            for d in (light, full)
        ]
        if not flags:  # the light path was taken all the way, or given up where it should be
            _, modules = _modules_of(
                "connect", f"localhost:{port}", "--ca-file", str(light / "ca.crt")
            )
            loaded = "cryptography.x509" in modules
            assert loaded is (case not in LIGHT_ALL_THE_WAY), case
    (light_run, light_dir), (full_run, full_dir) = zip(runs, (light, full), strict=True)
    assert light_run.exit_code == full_run.exit_code == 0, light_run.stdout
    assert _normalized(light_run.stdout, light_dir) == _normalized(full_run.stdout, full_dir)
    if case.startswith("intermediate and root trusted") and not flags:
        assert "issued under Broker Intermediate CA" in light_run.stdout
    if case == "strict verifier refuses":
        assert "strict RFC 5280 verifier" in light_run.stdout
    if case.endswith("expires soon") and not flags:
        assert "expire" in light_run.stdout


_RUN_AND_LIST_MODULES = """
import json, sys
from mqtt_tls_probe.cli.application import main
sys.argv = ["probe", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    code = exc.code
print("\\nMODULES " + json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def _modules_of(*args: str) -> tuple[int, list[str]]:
    """A ``probe`` run in a fresh interpreter: its exit code and every module it imported."""
    run = subprocess.run(
        [sys.executable, "-c", _RUN_AND_LIST_MODULES, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    marker = run.stdout.rindex("MODULES ")
    found = json.loads(run.stdout[marker + len("MODULES ") :])
    return found["code"], found["modules"]


def _heavy(modules: list[str], *roots: str) -> list[str]:
    return [m for m in modules if m.split(".")[0] in roots]


def test_a_text_success_imports_neither_cryptography_nor_kubernetes_nor_amqtt(
    tmp_path: Path,
) -> None:
    root = create_root_ca()
    cert_file, key_file = write_chain(tmp_path, [issue_server_certificate(root, NAMES)])
    write_pem(tmp_path / "ca.crt", root)
    listener = [f"certfile {cert_file}", f"keyfile {key_file}", "allow_anonymous true"]
    with mosquitto(tmp_path / "broker", listener) as port:
        target = f"localhost:{port}"
        code, text_modules = _modules_of("connect", target, "--ca-file", str(tmp_path / "ca.crt"))
        json_code, json_modules = _modules_of(
            "connect", target, "--ca-file", str(tmp_path / "ca.crt"), "--output", "json"
        )
    assert code == json_code == 0
    assert _heavy(text_modules, "cryptography", "kubernetes", "amqtt") == []
    # The JSON report describes the certificates: there, cryptography is needed (and loaded).
    assert "cryptography.x509" in json_modules
    assert _heavy(json_modules, "kubernetes", "amqtt") == []


def test_a_failure_still_explains_itself_with_cryptography(tmp_path: Path) -> None:
    """Expired: OpenSSL refuses, and the verify stage's words come from the full path."""
    root = create_root_ca()
    past = datetime.now(UTC) - timedelta(days=3)
    leaf = issue_server_certificate(root, NAMES, not_before=past - timedelta(days=1), days=1)
    cert_file, key_file = write_chain(tmp_path, [leaf])
    write_pem(tmp_path / "ca.crt", root)
    listener = [f"certfile {cert_file}", f"keyfile {key_file}", "allow_anonymous true"]
    with mosquitto(tmp_path / "broker", listener) as port:
        result = probe("connect", f"localhost:{port}", "--ca-file", str(tmp_path / "ca.crt"))
    assert result.exit_code == 6
    assert "cert_expired" in result.stdout
