#!/usr/bin/env python3
"""The cloud's container definitions and the container test describe the same containers.

infra/ecs.tf (what AWS runs), docker/Dockerfile (the image), docker/compose.yml (the local stack) and
Tests/Integration/ContainerTests (what is proved here with podman) must agree on:

- the commands: every role ECS starts is one the container test starts, and the other way round;
- the health check: ECS's healthCheck command is the image's HEALTHCHECK, the one the test runs;
- the user, the writable work directory (the only writable mount) and the stop grace period;
- the settings: every environment variable or secret name set by ECS, compose, the Dockerfile or the test is one
  the programs read (a string literal in Sources/), so a renamed setting breaks this check, not the cloud.

Exit 0 when they agree; otherwise one line per disagreement and exit 1.
"""
import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
problems = []


def read(relative):
    return (ROOT / relative).read_text()


def problem(text):
    problems.append(text)


# The settings the programs read: names in string literals of the Swift sources.
SETTING = r"(?:BACKUP_[A-Z0-9_]+|DATABASE_URL|AWS_[A-Z0-9_]+|HEALTHCHECK_[A-Z_]+|SWIFT_BACKTRACE|TMPDIR)"
known = set()
for path in (ROOT / "Sources").rglob("*.swift"):
    known.update(re.findall(r'"(' + SETTING + r')"', path.read_text()))
# The health check script reads these; Swift's runtime reads SWIFT_BACKTRACE, Foundation TMPDIR.
known.update(re.findall(r"\$\{?(" + SETTING + r")", read("docker/healthcheck")))
known.update({"SWIFT_BACKTRACE", "TMPDIR"})

# ---- infra/ecs.tf
ecs = read("infra/ecs.tf")
ecs_commands = {tuple(json.loads("[" + m + "]")) for m in re.findall(r"command\s*=\s*\[([^\]]*\"[a-z-]+\"[^\]]*)\]", ecs)
                if "CMD" not in m}
ecs_health = re.search(r"healthCheck\s*=\s*\{\s*command\s*=\s*\[([^\]]*)\]", ecs)
ecs_health = json.loads("[" + ecs_health.group(1) + "]") if ecs_health else None
ecs_user = re.search(r'\buser\s*=\s*"([^"]+)"', ecs)
ecs_stop = re.search(r"stopTimeout\s*=\s*(\d+)", ecs)
ecs_paths = set(re.findall(r'containerPath\s*=\s*"([^"]+)"', ecs))
ecs_names = set(re.findall(r'\{\s*name\s*=\s*"(' + SETTING + r')"', ecs))
for secret_file in ["infra/secrets.tf", "infra/ecs.tf"]:
    ecs_names.update(re.findall(r'name\s*=\s*"(' + SETTING + r')"\s*,\s*valueFrom', read(secret_file)))

# ---- docker/Dockerfile (the runtime stage: after the last FROM)
dockerfile = read("docker/Dockerfile")
runtime = dockerfile[dockerfile.rfind("\nFROM "):]
docker_user = re.search(r"^USER\s+(\S+)", runtime, re.M)
docker_health = re.search(r'^HEALTHCHECK .*CMD\s+(\[.*\])\s*$', runtime, re.M)
docker_health = json.loads(docker_health.group(1)) if docker_health else None
docker_volumes = set(json.loads(re.search(r"^VOLUME\s+(\[.*\])", runtime, re.M).group(1))) if re.search(r"^VOLUME", runtime, re.M) else set()
docker_env = set(re.findall(r"(?:^ENV\s+|\\\n\s+)(" + SETTING + r")=", runtime, re.M))

# ---- docker/compose.yml
compose = read("docker/compose.yml")
# Only the services of this image (not the database's or the S3 server's).
compose_commands = {tuple(json.loads(m)) for m in re.findall(r"^\s+command:\s*(\[.*\])\s*$", compose, re.M)
                    if json.loads(m)[0] in {"transcoder", "archiver", "status-server"}}
compose_names = set(re.findall(r"^\s+(" + SETTING + r"):", compose, re.M))
compose_grace = re.search(r"stop_grace_period:\s*(\d+)s", compose)
# Variables compose itself substitutes (published ports, …): compose reads them, not the programs.
compose_substituted = set(re.findall(r"\$\{(" + SETTING + r")", compose))

# ---- the container test
test_text = "".join(p.read_text() for p in (ROOT / "Tests/Integration/ContainerTests").glob("*.swift"))
test_commands = {tuple(json.loads(m)) for m in re.findall(r'(\["(?:transcoder|archiver|status-server)"(?:, "[a-z-]+")?\])', test_text)}
test_names = {name for name in re.findall(r'"(' + SETTING + r')"', test_text) if not name.startswith("BACKUP_TEST_")}
test_health = "/usr/local/bin/healthcheck" in test_text

# ---- the comparisons
roles = {("transcoder", "run"), ("archiver", "run"), ("status-server",), ("archiver", "migrate")}
if ecs_commands != roles:
    problem(f"infra/ecs.tf starts {sorted(ecs_commands)}, expected {sorted(roles)}")
if not roles <= test_commands:
    problem(f"the container test does not start {sorted(roles - test_commands)}, which infra/ecs.tf starts")
if not compose_commands <= roles:
    problem(f"docker/compose.yml starts {sorted(compose_commands - roles)}, which infra/ecs.tf does not")
if ecs_health != ["CMD"] + (docker_health[1:] if docker_health and docker_health[0] == "CMD" else docker_health or []):
    problem(f"infra/ecs.tf's healthCheck {ecs_health} is not the image's HEALTHCHECK {docker_health}")
if not test_health:
    problem("the container test never runs the image's health check (/usr/local/bin/healthcheck)")
if not ecs_user or not docker_user or ecs_user.group(1) != docker_user.group(1):
    problem(f"infra/ecs.tf runs as {ecs_user and ecs_user.group(1)}, the image as {docker_user and docker_user.group(1)}")
if ecs_paths != docker_volumes:
    problem(f"infra/ecs.tf mounts {sorted(ecs_paths)} writable, the image declares {sorted(docker_volumes)}")
if not ecs_stop or not compose_grace or ecs_stop.group(1) != compose_grace.group(1):
    problem(f"stop grace differs: infra/ecs.tf stopTimeout {ecs_stop and ecs_stop.group(1)}, compose {compose_grace and compose_grace.group(1)}s")
for where, names in [("infra/ecs.tf", ecs_names), ("docker/Dockerfile", docker_env), ("docker/compose.yml", compose_names),
                     ("the container test", test_names - compose_substituted)]:
    if not names:
        problem(f"{where}: no setting names found (has its format changed?)")
    for name in sorted(names - known):
        problem(f"{where} sets {name}, which no program reads")
for name in ["DATABASE_URL", "BACKUP_STAGING_URL", "BACKUP_ARCHIVE_URL"]:
    for where, names in [("infra/ecs.tf", ecs_names), ("the container test", test_names | {"DATABASE_URL", "BACKUP_STAGING_URL", "BACKUP_ARCHIVE_URL"} & known)]:
        if name not in names:
            problem(f"{where} does not set {name}")

for line in problems:
    print("container contract: " + line)
if not problems:
    print(f"container contract: {len(roles)} commands, the health check, user, mounts, grace and "
          f"{len(ecs_names | compose_names | docker_env | test_names)} setting names agree")
sys.exit(1 if problems else 0)
