"""Kubeconfig files read as untrusted input, before the official loader sees them.

Rule: a kubeconfig is a regular file of at most ``MAX_KUBECONFIG_BYTES``,
YAML without aliases and at most ``MAX_DEPTH`` levels deep, whose top level is
a mapping; the files the chosen context names (CA, client certificate and
key, token) are regular files of at most ``MAX_REFERENCED_BYTES``. Anything
else is ``kubeconfig_invalid`` saying why, found before the official loader
runs: it reads with no limit (a FIFO blocks it, ``/dev/zero`` fills memory)
and formats merged entries into strings, which expands a 1 KB alias bomb into
gigabytes.

Which files, and which context, follow kubectl: ``--kubeconfig``, else every
existing path of ``$KUBECONFIG`` (the first file naming a current-context
wins; for each cluster, user or context name the first file defining it
wins), else ``~/.kube/config``; none means the in-cluster service account.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from mqtt_tls_probe.errors import ErrorKind, ProbeError

MAX_KUBECONFIG_BYTES = 1024 * 1024
MAX_REFERENCED_BYTES = 1024 * 1024
MAX_DEPTH = 64  # kubectl writes 6 levels; libyaml itself stops at 1000
SMALLER_KUBECONFIG = (
    "Write one with only the context needed: kubectl config view --minify --flatten "
    "--context NAME > small.kubeconfig, then pass --kubeconfig small.kubeconfig."
)

# What each section's entries may name as a file, under the entry's inner key.
_FILE_FIELDS = {
    "clusters": ("cluster", ("certificate-authority",)),
    "users": ("user", ("client-certificate", "client-key", "tokenFile")),
}


class KubeconfigFile(NamedTuple):  # not a dataclass: 0.6 ms less at import
    path: Path
    document: dict[str, Any]


def _invalid(message: str, hint: str | None = None) -> ProbeError:
    return ProbeError(ErrorKind.KUBECONFIG_INVALID, message, hint)


def _file_type(mode: int) -> str:
    kinds = (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def read_regular_file(path: Path, what: str, limit: int) -> bytes:
    """The bytes of ``path``, refused unless it is a regular file of at most ``limit`` bytes.

    Opened non-blocking: a FIFO opens at once (a blocking open waits for a
    writer that may never come) and is then refused by its type.

    Raises:
        ProbeError: ``kubeconfig_invalid``.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise _invalid(f"The {what} {path} cannot be read: {exc.strerror}.") from exc
    with os.fdopen(descriptor, "rb") as file:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise _invalid(f"The {what} {path} is {_file_type(mode)}, not a regular file.")
        data = file.read(limit + 1)
    if len(data) > limit:
        raise _invalid(
            f"The {what} {path} is larger than {limit // 1024} KiB, the most the probe reads.",
            SMALLER_KUBECONFIG,
        )
    return data


def check_regular_file(path: Path, what: str, limit: int) -> None:
    """Refuse ``path`` unless it is missing (the loader says so) or a small regular file."""
    try:
        status = path.stat()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise _invalid(f"The {what} {path} cannot be read: {exc.strerror}.") from exc
    if not stat.S_ISREG(status.st_mode):
        raise _invalid(f"The {what} {path} is {_file_type(status.st_mode)}, not a regular file.")
    if status.st_size > limit:
        raise _invalid(
            f"The {what} {path} is larger than {limit // 1024} KiB, the most the probe reads."
        )


# --- YAML -------------------------------------------------------------------------------

# libyaml's safe loader when PyYAML was built with it (kube_loader hands it to the
# official loader too), else the pure-Python one.
YAML_LOADER: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_OPENING = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_CLOSING = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


def _line(event: yaml.Event) -> int:
    mark = event.start_mark
    return mark.line + 1 if mark is not None else 0


def _check_events(text: str, path: Path) -> None:
    """Refuse aliases and deep nesting, reading events only (nothing is built yet)."""
    depth = 0
    for event in yaml.parse(text, Loader=YAML_LOADER):
        if isinstance(event, yaml.AliasEvent):
            raise _invalid(
                f"The kubeconfig {path} uses a YAML alias (*{event.anchor}, line "
                f"{_line(event)}); the probe refuses aliases: a few of them can "
                "expand a small file into gigabytes.",
                "Write the values out in full (kubectl config view --flatten does).",
            )
        if isinstance(event, _OPENING):
            depth += 1
            if depth > MAX_DEPTH:
                raise _invalid(
                    f"The kubeconfig {path} nests deeper than {MAX_DEPTH} levels "
                    f"(line {_line(event)}): that is no kubeconfig."
                )
        elif isinstance(event, _CLOSING):
            depth -= 1


def parse_kubeconfig(data: bytes, path: Path) -> dict[str, Any]:
    """The top-level mapping of a kubeconfig's bytes.

    Raises:
        ProbeError: ``kubeconfig_invalid``: not UTF-8, not YAML, an alias, too deep,
            empty, or not a mapping.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _invalid(f"The kubeconfig {path} is not UTF-8 text (byte {exc.start}).") from exc
    try:
        _check_events(text, path)
        document = yaml.load(text, Loader=YAML_LOADER)  # noqa: S506 (a safe loader, C or Python)
    except yaml.YAMLError as exc:
        cause = " ".join(str(exc).split())[:300]
        raise _invalid(f"The kubeconfig {path} is not valid YAML: {cause}.") from exc
    if document is None:
        raise _invalid(f"The kubeconfig {path} is empty.")
    if not isinstance(document, dict):
        raise _invalid(
            f"The kubeconfig {path} holds {type(document).__name__} at its top level, "
            "not a mapping (apiVersion, clusters, contexts, users)."
        )
    return document


def read_kubeconfig(path: Path) -> KubeconfigFile:
    """One kubeconfig file, read and checked.

    Raises:
        ProbeError: ``kubeconfig_invalid``.
    """
    data = read_regular_file(path, "kubeconfig", MAX_KUBECONFIG_BYTES)
    return KubeconfigFile(path, parse_kubeconfig(data, path))


def kubeconfig_files(explicit: Path | None) -> list[KubeconfigFile]:
    """The kubeconfig files kubectl would read, in its order; [] means in-cluster.

    Raises:
        ProbeError: ``kubeconfig_invalid``: an explicit file that is missing, or any
            chosen file that is not a small regular YAML mapping.
    """
    if explicit is not None:
        if not explicit.exists() and not explicit.is_symlink():
            raise _invalid(f"The kubeconfig {explicit} does not exist.", "Check --kubeconfig.")
        return [read_kubeconfig(explicit)]
    listed = os.environ.get("KUBECONFIG", "")
    if listed:
        paths = [Path(p).expanduser() for p in listed.split(os.pathsep) if p]
    else:
        paths = [Path("~/.kube/config").expanduser()]
    return [read_kubeconfig(p) for p in paths if p.exists()]


# --- contexts and the entries they name --------------------------------------------------


def _named_entries(document: dict[str, Any], section: str) -> Iterator[dict[str, Any]]:
    """The well-shaped entries of a section; the loader reports the malformed ones."""
    entries = document.get(section)
    if isinstance(entries, list):
        yield from (e for e in entries if isinstance(e, dict) and isinstance(e.get("name"), str))


def current_context(files: list[KubeconfigFile]) -> str | None:
    """The first file's non-empty current-context, as kubectl picks it."""
    for file in files:
        name = file.document.get("current-context")
        if isinstance(name, str) and name:
            return name
    return None


def context_names(files: list[KubeconfigFile]) -> list[str]:
    names: list[str] = []
    for file in files:
        names += [e["name"] for e in _named_entries(file.document, "contexts")]
    return list(dict.fromkeys(names))


def _first_named(
    files: list[KubeconfigFile], section: str, name: object
) -> tuple[dict[str, Any], Path] | None:
    for file in files:
        for entry in _named_entries(file.document, section):
            if entry["name"] == name:
                return entry, file.path
    return None


def referenced_files(files: list[KubeconfigFile], context: str) -> list[tuple[str, Path]]:
    """The files the context's cluster and user name, as (field, path), relative to their file."""
    found = _first_named(files, "contexts", context)
    inner = found[0].get("context") if found else None
    if not isinstance(inner, dict):
        return []
    named = {"clusters": inner.get("cluster"), "users": inner.get("user")}
    paths: list[tuple[str, Path]] = []
    for section, (key, fields) in _FILE_FIELDS.items():
        entry = _first_named(files, section, named[section])
        body = entry[0].get(key) if entry else None
        if entry is None or not isinstance(body, dict):
            continue
        base = entry[1].parent
        paths += [
            (field, base / Path(body[field]).expanduser())
            for field in fields
            if isinstance(body.get(field), str) and body[field]
        ]
    return paths


def check_referenced_files(files: list[KubeconfigFile], context: str) -> None:
    """Refuse a context whose CA, client certificate, key or token file is not a small file.

    Raises:
        ProbeError: ``kubeconfig_invalid``.
    """
    for field, path in referenced_files(files, context):
        check_regular_file(path, f"{field} of the context {context!r}:", MAX_REFERENCED_BYTES)
