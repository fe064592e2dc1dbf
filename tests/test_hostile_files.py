"""Hostile local files (issue 9): every read is bounded and never blocks; every write is safe.

Reading: a FIFO without a writer, /dev/zero and a directory, for every flag
that names a file to read, each within a wall-time bound; a pipe with a
writer (the shell's ``<(kubectl create token ...)``) is read. Writing: no
overwrite without --force, never through a symbolic link (dangling or not),
and an unwritable target is a usage error with the path and the reason (the
suite runs as root, where permission bits stop nothing: a path under a
regular file is unwritable for everyone).
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mqtt_tls_probe.adapters.files import (
    LocalFileError,
    check_output_path,
    read_local_file,
    write_file,
)
from mqtt_tls_probe.core.certinfo import describe_content
from mqtt_tls_probe.dev.pki import PkiFiles
from mqtt_tls_probe.errors import UsageError

from .helpers import probe, probe_json

WALL_TIME = 5.0  # seconds: a blocking read would hang the test until pytest is killed

# --- reading ------------------------------------------------------------------------


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    """A FIFO that nobody writes to."""
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return path


@pytest.fixture
def pipe_path() -> Iterator[Callable[[bytes | None], Path]]:
    """A pipe as the shell's ``<(command)`` gives it: /dev/fd/N, its writer a separate fd.

    ``pipe_path(data)`` writes ``data`` and closes the writer (the command ended);
    ``pipe_path(None)`` keeps the writer open and silent (a command that hangs).
    """
    opened: list[int] = []

    def make(data: bytes | None) -> Path:
        reader, writer = os.pipe()
        opened.extend([reader, writer])
        if data is not None:
            os.write(writer, data)
            os.close(writer)
            opened.remove(writer)
        return Path(f"/dev/fd/{reader}")

    yield make
    for fd in opened:
        os.close(fd)


def _hostile_sources(tmp_path: Path, fifo: Path) -> dict[str, Path]:
    return {"fifo": fifo, "device": Path("/dev/zero"), "directory": tmp_path}


def _timed(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    started = time.monotonic()
    result = probe(*args, env=env)
    assert time.monotonic() - started < WALL_TIME, args
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("kind", ["fifo", "device", "directory"])
def test_a_ca_file_that_is_no_file_is_a_trust_error(tmp_path: Path, fifo: Path, kind: str) -> None:
    path = _hostile_sources(tmp_path, fifo)[kind]
    for command in (["connect", "127.0.0.1:1"], ["bundle"]):
        code, doc = probe_json(*command, "--ca-file", str(path))
        assert code == 3, command
        assert doc["error"]["kind"] == "trust_bundle_invalid"
        assert str(path) in doc["error"]["message"]


@pytest.mark.parametrize("kind", ["fifo", "device", "directory"])
def test_inspect_of_a_file_that_is_no_file_is_a_trust_error(
    tmp_path: Path, fifo: Path, kind: str
) -> None:
    path = _hostile_sources(tmp_path, fifo)[kind]
    started = time.monotonic()
    code, doc = probe_json("inspect", str(path))
    assert time.monotonic() - started < WALL_TIME
    assert code == 3
    assert doc["error"]["kind"] == "trust_bundle_invalid"
    assert doc["origin"] == "file"


@pytest.mark.parametrize("kind", ["fifo", "device", "directory"])
@pytest.mark.parametrize(
    "flags",
    [
        ["--username", "u", "--password-file"],
        ["--sat-file"],
        ["--key", "KEY", "--cert"],
        ["--cert", "CERT", "--key"],
    ],
    ids=["password-file", "sat-file", "cert", "key"],
)
def test_a_secret_or_identity_file_that_is_no_file_is_a_usage_error(
    tmp_path: Path, fifo: Path, pki: PkiFiles, kind: str, flags: list[str]
) -> None:
    path = _hostile_sources(tmp_path, fifo)[kind]
    real = {"KEY": str(pki.client_key), "CERT": str(pki.client_cert)}
    args = [real.get(a, a) for a in flags]
    code, out, err = _timed("connect", "--insecure", "127.0.0.1:1", *args, str(path))
    assert code == 2, err
    assert out == ""
    assert str(path) in err
    expected = {"fifo": "no writer", "device": "character device", "directory": "directory"}
    assert expected[kind] in err


def test_a_pipe_with_a_writer_is_read_like_process_substitution(
    pki: PkiFiles, pipe_path: Callable[[bytes | None], Path]
) -> None:
    ca = pipe_path(pki.ca_cert.read_bytes())
    code, doc = probe_json("bundle", "--ca-file", str(ca))
    assert code == 0
    assert doc["location"] == str(ca)
    token = pipe_path(b"header.payload.signature\n")
    assert probe("connect", "--ca-file", "/nonexistent", "--sat-file", str(token)).exit_code == 3


def test_a_pipe_whose_writer_hangs_is_given_up_after_the_timeout(
    pipe_path: Callable[[bytes | None], Path],
) -> None:
    token = pipe_path(None)
    code, _, err = _timed("connect", "--insecure", "--timeout", "0.3", "--sat-file", str(token))
    assert code == 2
    assert "did not finish within 0.3 s" in err


def test_a_fifo_that_gets_a_writer_later_is_read(tmp_path: Path, fifo: Path) -> None:
    """A writer that holds the FIFO open and finishes a moment later: the read waits for it."""
    holder = os.open(fifo, os.O_RDWR)  # a writer (and reader) from the start, as a shell has
    os.write(holder, b"sec")

    def finish() -> None:
        time.sleep(0.2)
        os.close(holder)

    closer = threading.Thread(target=finish)
    closer.start()
    try:
        assert read_local_file(fifo, 1024, wait=WALL_TIME) == b"sec"
    finally:
        closer.join(WALL_TIME)


def test_the_reader_stops_one_byte_past_its_cap(tmp_path: Path) -> None:
    exact = tmp_path / "exact"
    exact.write_bytes(b"x" * 1024)
    assert read_local_file(exact, 1024) == b"x" * 1024
    exact.write_bytes(b"x" * 1025)
    with pytest.raises(LocalFileError, match="larger than"):
        read_local_file(exact, 1024)


def test_a_large_ca_file_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.pem"
    with big.open("wb") as file:
        file.truncate(50 << 20)  # sparse: 50 MiB without writing them
    code, doc = probe_json("connect", "127.0.0.1:1", "--ca-file", str(big))
    assert code == 3
    assert "larger than 1 MiB" in doc["error"]["message"]


def test_a_missing_file_is_not_found(tmp_path: Path) -> None:
    code, doc = probe_json("connect", "--ca-file", str(tmp_path / "nope.crt"))
    assert (code, doc["error"]["kind"]) == (3, "trust_bundle_not_found")
    with pytest.raises(LocalFileError) as caught:
        read_local_file(tmp_path / "a\x00b", 10)
    assert caught.value.unreadable


def test_the_content_of_a_file_that_is_no_certificate_is_never_shown(tmp_path: Path) -> None:
    secret = "hunter2-the-password-of-the-broker"
    password = tmp_path / "password.txt"
    password.write_text(secret + "\n")
    for args in (["connect", "127.0.0.1:1", "--ca-file"], ["inspect"], ["bundle", "--ca-file"]):
        result = probe(*args, str(password))
        assert result.exit_code == 3
        assert "hunter2" not in result.stdout + result.stderr, args
        assert "bytes of text" in result.stdout


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "it is empty"),
        (b" \n\t", "only white space"),
        (b"hunter2\n", "8 bytes of text"),
        (b"\x00\x01\xffhunter2", "binary data"),
        (b"-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n", "PEM private key"),
        (b"-----BEGIN hunter2-----\n", "bytes of text"),  # no PEM label: not told
    ],
)
def test_describe_content_tells_what_a_blob_looks_like(data: bytes, words: str) -> None:
    description = describe_content(data)
    assert words in description
    assert "hunter2" not in description


@pytest.mark.parametrize("source", ["/nonexistent/x.pem", "missing.crt", "certs/ca.cer", "a.DER"])
def test_inspect_of_a_missing_path_is_not_a_host_name(source: str) -> None:
    code, doc = probe_json("inspect", source)
    assert code == 3
    assert doc["origin"] == "file"
    assert doc["error"]["kind"] == "trust_bundle_not_found"


# --- writing: bundle --out ---------------------------------------------------------------


def _bundle_out(pki: PkiFiles, out: Path, *flags: str) -> tuple[int, str, str]:
    result = probe("bundle", "--ca-file", str(pki.ca_cert), "--out", str(out), *flags)
    return result.exit_code, result.stdout, result.stderr


def test_bundle_out_writes_and_says_so_in_json(pki: PkiFiles, tmp_path: Path) -> None:
    out = tmp_path / "ca.crt"
    code, doc = probe_json("bundle", "--ca-file", str(pki.ca_cert), "--out", str(out))
    assert code == 0
    assert doc["written"] == str(out)
    assert out.read_bytes() == pki.ca_cert.read_bytes()
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    assert probe_json("bundle", "--ca-file", str(pki.ca_cert))[1]["written"] is None


def test_bundle_out_refuses_an_existing_file_without_force(pki: PkiFiles, tmp_path: Path) -> None:
    out = tmp_path / "ca.crt"
    out.write_text("keep me")
    code, stdout, err = _bundle_out(pki, out)
    assert code == 2
    assert stdout == ""
    assert str(out) in err
    assert "--force" in err
    assert out.read_text() == "keep me"
    assert _bundle_out(pki, out, "--force")[0] == 0
    assert out.read_bytes() == pki.ca_cert.read_bytes()


def test_bundle_out_never_writes_through_a_dangling_symlink(pki: PkiFiles, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere" / "planted"
    target.parent.mkdir()
    out = tmp_path / "ca.crt"
    out.symlink_to(target)
    assert _bundle_out(pki, out)[0] == 2
    assert not target.exists()
    assert _bundle_out(pki, out, "--force")[0] == 0
    assert not target.exists()  # the link was replaced, not followed
    assert not out.is_symlink()
    assert out.read_bytes() == pki.ca_cert.read_bytes()


def test_bundle_out_force_replaces_a_symlink_itself(pki: PkiFiles, tmp_path: Path) -> None:
    target = tmp_path / "precious"
    target.write_text("untouched")
    out = tmp_path / "ca.crt"
    out.symlink_to(target)
    assert _bundle_out(pki, out, "--force")[0] == 0
    assert target.read_text() == "untouched"
    assert not out.is_symlink()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left


@pytest.mark.parametrize("where", ["directory", "under-a-file", "missing-directory", "fifo"])
def test_bundle_out_to_an_unwritable_path_is_a_usage_error(
    pki: PkiFiles, tmp_path: Path, fifo: Path, where: str
) -> None:
    regular = tmp_path / "regular"
    regular.write_text("x")
    out = {
        "directory": tmp_path,
        "under-a-file": regular / "ca.crt",
        "missing-directory": tmp_path / "no" / "ca.crt",
        "fifo": fifo,  # not replaced, even with --force (nor would a device be)
    }[where]
    code, doc = probe_json("bundle", "--ca-file", str(pki.ca_cert), "--out", str(out), "--force")
    assert code == 2
    assert doc["error"]["kind"] == "usage"
    assert str(out) in doc["error"]["message"]
    assert regular.read_text() == "x"
    assert fifo.is_fifo()


def test_the_output_path_is_checked_before_the_bundle_is_read(tmp_path: Path) -> None:
    """A bad --out is exit 2 even when the bundle itself cannot be had (exit 3 otherwise)."""
    code, _, err = _bundle_out_missing_ca(tmp_path, tmp_path)
    assert code == 2
    assert "is a directory" in err


def _bundle_out_missing_ca(tmp_path: Path, out: Path) -> tuple[int, str, str]:
    result = probe("bundle", "--ca-file", str(tmp_path / "missing.crt"), "--out", str(out))
    return result.exit_code, result.stdout, result.stderr


# --- writing: certs init and broker --certs ------------------------------------------------


def test_certs_init_never_writes_through_a_dangling_ca_key_link(tmp_path: Path) -> None:
    directory = tmp_path / "pki"
    directory.mkdir()
    planted = tmp_path / "planted.key"
    (directory / "ca.key").symlink_to(planted)
    result = probe("certs", "init", str(directory))
    assert result.exit_code == 2
    assert "ca.key" in result.stderr
    assert not planted.exists()
    assert sorted(p.name for p in directory.iterdir()) == ["ca.key"]  # nothing written
    assert probe("certs", "init", str(directory), "--force").exit_code == 0
    assert not planted.exists()
    key = directory / "ca.key"
    assert not key.is_symlink()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


@pytest.mark.parametrize("where", ["a-file", "under-a-file"])
def test_certs_init_into_an_unwritable_place_is_a_usage_error(tmp_path: Path, where: str) -> None:
    regular = tmp_path / "regular"
    regular.write_text("x")
    directory = regular if where == "a-file" else regular / "sub"
    for command in (["certs", "init", str(directory)], ["broker", "--certs", str(directory)]):
        result = probe(*command)
        assert result.exit_code == 2, command
        assert str(directory) in result.stderr
        assert "Traceback" not in result.stderr
    assert regular.read_text() == "x"


def test_write_file_without_replace_never_follows_a_link(tmp_path: Path) -> None:
    target = tmp_path / "target"
    link = tmp_path / "link"
    link.symlink_to(target)
    with pytest.raises(UsageError, match="refusing to overwrite"):
        write_file(link, b"data")
    assert not target.exists()
    write_file(tmp_path / "new", b"data", mode=0o600)
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o600


def test_check_output_path_names_the_reason(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        check_output_path(tmp_path / "missing" / "file", replace=False)
    with pytest.raises(UsageError, match="not a valid file name"):
        check_output_path(tmp_path / "a\x00b", replace=True)
    check_output_path(tmp_path / "new", replace=False)  # a new file in a directory: fine
