"""The container image, without a container runtime: hadolint checks the
Dockerfile, and the wheel the build stage makes is installed the way the
runtime stage installs it (the locked, hash-checked dependencies, then the
wheel alone) into a fresh virtual environment whose ``probe`` then runs the
image's entrypoint commands.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
UID = 10001  # the user the pods of deploy/kubernetes run as


def _tool(name: str) -> str:
    """A dev-group binary: next to this interpreter (the venv), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} not found: `uv sync` installs it (dev group)")
    return found


def _uv() -> str:
    # `uv run` says where it is; .ci/run may reach uv only through python -m uv.
    found = os.environ.get("UV") or shutil.which("uv")
    if found is None:
        pytest.fail("uv not found: run the suite with `uv run pytest`")
    return found


def _run(
    args: list[str], *, cwd: Path, timeout: float, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    found = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def _runtime_stage() -> list[tuple[str, str]]:
    instructions = _instructions(ROOT / "Dockerfile")
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


# --- the Dockerfile -----------------------------------------------------------------------


def test_hadolint_passes(tmp_path: Path) -> None:
    # A clean HOME: no user-level hadolint configuration can relax the rules.
    env = {"HOME": str(tmp_path), "PATH": os.defpath}
    result = _run([_tool("hadolint"), "--no-color", "Dockerfile"], cwd=ROOT, timeout=60, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_hadolint_really_lints(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install uv\n")
    env = {"HOME": str(tmp_path), "PATH": os.defpath}
    result = _run([_tool("hadolint"), "--no-color", str(bad)], cwd=tmp_path, timeout=60, env=env)
    assert result.returncode != 0
    assert {"DL3006", "DL3013"} <= set(re.findall(r"DL\d{4}", result.stdout))


def test_image_is_multi_stage_and_pinned() -> None:
    froms = [args for keyword, args in _instructions(ROOT / "Dockerfile") if keyword == "FROM"]
    assert len(froms) == 2
    for image in froms:
        reference = image.split()[0]
        assert reference.startswith("python:3.11"), reference
        assert ":" in reference
        assert not reference.endswith(":latest")


def test_runtime_stage_runs_probe_as_the_manifests_user() -> None:
    runtime = _runtime_stage()
    assert ("USER", f"{UID}:{UID}") in runtime
    assert ("ENTRYPOINT", '["probe"]') in runtime
    env = " ".join(args for keyword, args in runtime if keyword == "ENV")
    assert "HOME=/tmp" in env.split()
    assert "PYTHONDONTWRITEBYTECODE=1" in env.split()
    # Only built artefacts come from the build stage: no source tree, no uv.
    copies = [args for keyword, args in runtime if keyword == "COPY"]
    assert copies == ["--from=build /dist /tmp/dist"]

    manifests = (ROOT / "deploy" / "kubernetes").rglob("*.yaml")
    users = set()
    for manifest in manifests:
        users |= set(re.findall(r"run(?:AsUser|AsGroup): (\d+)", manifest.read_text()))
    assert users == {str(UID)}


def test_build_context_holds_only_what_the_dockerfile_copies() -> None:
    """.dockerignore is an allow-list: certs/ (private keys), .venv, tests stay out."""
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    sources: set[str] = set()
    for keyword, args in _instructions(ROOT / "Dockerfile"):
        if keyword == "COPY" and not args.startswith("--from"):
            sources.update(p.rstrip("/") for p in args.split()[:-1])
    assert sources == allowed


def test_compose_overrides_the_entrypoint_only_where_a_shell_is_needed() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    certs, broker = compose["services"]["certs"], compose["services"]["broker"]
    assert certs["entrypoint"][:2] == ["sh", "-c"]
    assert "probe certs init /certs" in certs["entrypoint"][2]
    assert "entrypoint" not in broker
    assert broker["command"][0] == "broker"  # arguments of the entrypoint, probe
    # ./certs belongs to the developer: both run as one uid, so the broker can
    # read the 0600 keys the one-shot wrote.
    assert certs["user"] == broker["user"]


def test_compose_file_is_valid(tmp_path: Path) -> None:
    compose = shutil.which("docker-compose")
    if compose is None:
        pytest.skip("docker-compose is not installed (.ci/run installs it)")
    result = _run([compose, "config", "-q"], cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr


# --- the wheel, installed the way the runtime stage does ----------------------------------


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the locked dependencies and the wheel: its bin directory."""
    work = tmp_path_factory.mktemp("image")
    dist = work / "dist"
    uv = _uv()
    steps = [
        [uv, "build", "--wheel", "--out-dir", str(dist)],
        [uv, "export", "--locked", "--no-dev", "--no-emit-project", "--format",
         "requirements-txt", "--output-file", str(dist / "requirements.txt")],
    ]  # fmt: skip
    for step in steps:
        result = _run(step, cwd=ROOT, timeout=300)
        assert result.returncode == 0, result.stderr
    [wheel] = dist.glob("mqtt_tls_probe-*.whl")
    venv = work / "venv"
    python = venv / "bin" / "python"
    steps = [
        [uv, "venv", "--python", sys.executable, str(venv)],
        [uv, "pip", "install", "--python", str(python), "--require-hashes",
         "-r", str(dist / "requirements.txt")],
        [uv, "pip", "install", "--python", str(python), "--no-deps", str(wheel)],
    ]  # fmt: skip
    for step in steps:
        result = _run(step, cwd=work, timeout=300)
        assert result.returncode == 0, result.stderr
    return venv / "bin"


def _entrypoint(bin_dir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``probe ARGS`` in the image's environment: HOME=/tmp-like, no bytecode written."""
    home = cwd / "container-home"
    home.mkdir(exist_ok=True)
    env = {"HOME": str(home), "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1", "PATH": os.defpath}
    return _run([str(bin_dir / "probe"), *args], cwd=cwd, timeout=60, env=env)


def test_wheel_installs_the_probe_command_alone(installed: Path, tmp_path: Path) -> None:
    python = installed / "python"
    where = _run(
        [str(python), "-c", "import mqtt_tls_probe; print(mqtt_tls_probe.__file__)"],
        cwd=tmp_path,
        timeout=60,
        env={"PATH": os.defpath},
    )
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(installed.parent)  # not the source tree
    tests = _run([str(python), "-c", "import tests"], cwd=tmp_path, timeout=60)
    assert tests.returncode != 0  # the suite is not in the wheel


def test_entrypoint_default_command_is_help(installed: Path, tmp_path: Path) -> None:
    result = _entrypoint(installed, "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for command in ("connect", "bundle", "certs", "broker"):
        assert command in result.stdout


def test_entrypoint_creates_a_pki_and_knows_connect(installed: Path, tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    result = _entrypoint(installed, "certs", "init", str(certs), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("ca.crt", "ca.key", "server.crt", "server.key"):
        assert (certs / name).is_file(), name
    assert stat.S_IMODE((certs / "server.key").stat().st_mode) == 0o600

    result = _entrypoint(installed, "connect", "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "--sat-file" in result.stdout
