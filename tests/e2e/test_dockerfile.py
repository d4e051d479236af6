"""Static checks of the Dockerfile, .dockerignore and docker-compose.yml (no Docker engine needed)."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.specifiers import SpecifierSet

from support.cli_check import KNOWN_SUBCOMMANDS, invoke_check

REPO = Path(__file__).resolve().parents[2]
PROFILES = {"candles", "ticks", "backfill", "local", "emulator"}
# Subcommands other modules add to the CLI; a spec may name them before they are registered.


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    text = (REPO / "Dockerfile").read_text()
    logical, current = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        logical.append(current)
        current = ""
    return [(item.split(None, 1)[0].upper(), item.split(None, 1)[1] if " " in item else "") for item in logical]


def dockerignore_patterns() -> list[str]:
    return [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines() if line.strip() and not line.startswith("#")]


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether `path` (relative) is excluded by .dockerignore (simple form: no ! exceptions used)."""
    parts = Path(path).parts
    for pattern in patterns:
        bare = pattern.removeprefix("**/")
        for i in range(len(parts)):
            if fnmatch.fnmatch("/".join(parts[: i + 1]), pattern) or fnmatch.fnmatch(parts[i], bare):
                return True
    return False


def test_multi_stage_with_slim_runtime():
    instructions = dockerfile_instructions()
    args = dict(re.match(r"(\w+)=(\S+)", a).groups() for k, a in instructions if k == "ARG" and "=" in a)
    stages = [a for k, a in instructions if k == "FROM"]
    assert len(stages) >= 2
    names = [s.split()[-1] for s in stages]
    assert names == ["builder", "runtime"]
    for stage in stages:
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], stage.split()[0])
        assert image == "python:3.11-slim-bookworm", image
    runtime = instructions[[i for i, (k, _) in enumerate(instructions) if k == "FROM"][-1]:]
    assert any(k == "COPY" and a.startswith("--from=builder") for k, a in runtime)
    runtime_runs = " ".join(a for k, a in runtime if k == "RUN")
    assert "--no-index" in runtime_runs and "build-essential" not in runtime_runs


def test_python_matches_pyproject():
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    image = next(a for k, a in dockerfile_instructions() if k == "ARG" and a.startswith("PYTHON_IMAGE="))
    version = re.search(r"python:(\d+\.\d+)", image).group(1)
    assert version in SpecifierSet(requires), (version, requires)
    # The oldest supported version is the one shipped, so the image proves the floor works.
    assert f">={version}" in requires.replace(" ", "")


def test_non_root_user_entrypoint_and_healthcheck():
    instructions = dockerfile_instructions()
    users = [a for k, a in instructions if k == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert ("ENTRYPOINT", '["mdstream"]') in instructions
    health = [a for k, a in instructions if k == "HEALTHCHECK"]
    assert len(health) == 1 and "http://127.0.0.1:${METRICS_PORT}/healthz" in health[0]
    env = " ".join(a for k, a in instructions if k == "ENV")
    assert re.search(r"\bMETRICS_PORT=\d+", env)


def test_every_copy_source_exists_and_is_not_ignored():
    patterns = dockerignore_patterns()
    copies = [a for k, a in dockerfile_instructions() if k == "COPY" and not a.startswith("--from")]
    assert copies
    for copy in copies:
        sources = [s for s in copy.split()[:-1] if not s.startswith("--")]
        for source in sources:
            assert (REPO / source).exists(), f"COPY source {source} does not exist"
            assert not ignored(source, patterns), f"COPY source {source} is excluded by .dockerignore"


def test_no_credentials_baked_in():
    instructions = dockerfile_instructions()
    for k, a in instructions:
        if k in ("ENV", "ARG"):
            assert not re.search(r"(KEY|SECRET|TOKEN|PASSWORD|CREDENTIALS)\w*=", a, re.I), a
        if k in ("COPY", "ADD"):
            assert ".json" not in a and "secret" not in a.lower(), a
    assert not any("GOOGLE_APPLICATION_CREDENTIALS" in a for k, a in instructions if k != "HEALTHCHECK")


def test_dockerignore_keeps_data_and_venvs_out():
    patterns = dockerignore_patterns()
    for path in (".git/config", ".venv/bin/python", "mdstream.duckdb", "data/x.csv.gz", "x/y.duckdb", ".env", "tests/test_x.py"):
        assert ignored(path, patterns), path
    for path in ("mdstream/cli/__init__.py", "sql/duckdb/views.sql", "pyproject.toml", "README.md"):
        assert not ignored(path, patterns), path


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def env_example() -> dict[str, str]:
    pairs = [line.split("=", 1) for line in (REPO / ".env.example").read_text().splitlines() if line and not line.startswith("#")]
    return {k: v for k, v in pairs}


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose-style ${VAR} / ${VAR:-default} with values from .env.example."""
    def sub(match: re.Match) -> str:
        name, default = match.group(1), match.group(3)
        assert name in env, f"${{{name}}} is used in docker-compose.yml but not documented in .env.example"
        return env[name] or (default or "")
    return re.sub(r"\$\{(\w+)(:-([^}]*))?\}", sub, value)


def test_compose_profiles(compose):
    used = {p for service in compose["services"].values() for p in service.get("profiles", [])}
    assert PROFILES <= used
    assert {"data", "spool"} <= set(compose["volumes"])


def mdstream_services(compose) -> dict[str, dict]:
    return {name: s for name, s in compose["services"].items() if s.get("build", {}).get("context") == "." and "dockerfile_inline" not in s["build"]}


def test_every_profile_runs_mdstream_with_config_and_volumes(compose):
    env = env_example()
    services = mdstream_services(compose)
    assert {p for s in services.values() for p in s["profiles"]} == PROFILES
    for name, service in services.items():
        args = [interpolate(str(part), env) for part in service["command"]]
        assert args[0] in KNOWN_SUBCOMMANDS, (name, args)
        assert service["env_file"][0]["path"] == ".env"
        mounts = {v.split(":")[1] for v in service["volumes"]}
        assert {"/data", "/spool"} <= mounts, name


@pytest.mark.parametrize("service", ["stream-local", "stream-candles", "stream-ticks", "backfill", "bq-init", "stream-emulator"])
def test_compose_command_parses_with_the_cli(compose, service):
    args = [interpolate(str(part), env_example()) for part in compose["services"][service]["command"]]
    ctx = invoke_check(args)
    assert ctx.params  # parsed into real parameter values


def test_local_profile_needs_no_cloud(compose):
    local = compose["services"]["stream-local"]
    args = [str(a) for a in local["command"]]
    assert args[args.index("--sink") + 1] == "duckdb"
    assert "environment" not in local and not any("/secrets" in v for v in local["volumes"])


def test_emulator_profile_is_offline(compose):
    emulator = compose["services"]["bq-emulator"]
    recipe = emulator["build"]["dockerfile_inline"]
    assert "FROM python:3.13-slim" in recipe and "local-bigquery==0.3.2" in recipe
    stream = compose["services"]["stream-emulator"]
    assert stream["environment"]["MDSTREAM_BQ_API_ENDPOINT"] == "http://bq-emulator:9050"
    assert stream["environment"]["MDSTREAM_BQ_WRITE_ENDPOINT"] == "bq-emulator:9060"
    args = [str(a) for a in stream["command"]]
    assert args[args.index("--source") + 1] == "synthetic" and args[args.index("--sink") + 1] == "bigquery"
    assert stream["depends_on"]["bq-init"]["condition"] == "service_completed_successfully"
    assert compose["services"]["bq-init"]["depends_on"]["bq-emulator"]["condition"] == "service_healthy"


def test_env_example_documents_every_variable():
    text = (REPO / ".env.example").read_text().splitlines()
    env = env_example()
    for i, line in enumerate(text):
        if line and not line.startswith("#"):
            # A variable is documented by the comment right above it or above its group of variables.
            j = i - 1
            while j >= 0 and text[j] and not text[j].startswith("#"):
                j -= 1
            assert j >= 0 and text[j].startswith("#"), f"{line.split('=')[0]} has no comment above it in .env.example"
    for name in ("GOOGLE_CLOUD_PROJECT", "MDSTREAM_BQ_DATASET", "MDSTREAM_BQ_API_ENDPOINT", "MDSTREAM_BQ_WRITE_ENDPOINT",
                 "TARDIS_API_KEY", "METRICS_PORT", "MDSTREAM_DUCKDB", "MDSTREAM_BQ_SPOOL_DIR"):
        assert name in env, name
    assert env["TARDIS_API_KEY"] == "", "no secret values in the example"
