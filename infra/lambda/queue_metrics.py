"""Publishes the pipeline's queue depth to CloudWatch, once a minute, for the ECS autoscaling alarms.

The queue is the catalog in PostgreSQL; the status server already counts it and serves the counts on
/metrics (Prometheus text). This function reads that page through the public status URL with the bearer token,
asks ECS how many tasks each worker service runs, and publishes per role (dimension Stack, Role):

  Backlog   files waiting for or in the hands of that role
  Running   tasks the service runs now
  WantMore  1 when there is work and no task, or more work per task than the target, and fewer tasks than the
            maximum; else 0. The scale-out alarm watches this, the scale-in alarm watches Backlog.

Only the Python standard library and boto3 (in the Lambda runtime) are used. Settings come from the environment
(see infra/scaling.tf).
"""

import json
import os
import re
import urllib.request

SAMPLE = re.compile(r'^backup_files\{state="([a-z_]+)"\}\s+([0-9.eE+-]+)\s*$')

# Which catalog states are each role's work. "staged" counts every kind of file: /metrics has no per-kind
# split, so the transcoder also sees regular files that wait briefly for the archiver.
ROLE_STATES = {
    "transcoder": ("staged", "transcoding"),
    "archiver": ("staged", "transcoded", "archiving"),
}


def parse_files_by_state(text):
    """Counts of backup_files{state=...} in a Prometheus text page."""
    counts = {}
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match:
            counts[match.group(1)] = float(match.group(2))
    return counts


def want_more(backlog, running, per_task, maximum):
    """1 when another task should start: work and no task, or more work per task than per_task."""
    if backlog <= 0 or running >= maximum:
        return 0
    if running == 0:
        return 1
    return 1 if backlog / running > per_task else 0


def decide(counts, running, settings):
    """The metrics to publish for each role: {role: {"Backlog": n, "Running": n, "WantMore": 0|1}}."""
    result = {}
    for role, states in ROLE_STATES.items():
        backlog = sum(counts.get(state, 0) for state in states)
        per_task, maximum = settings[role]
        result[role] = {
            "Backlog": backlog,
            "Running": running.get(role, 0),
            "WantMore": want_more(backlog, running.get(role, 0), per_task, maximum),
        }
    return result


def read_metrics_page(url, token, timeout=10):
    request = urllib.request.Request(url, headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (https URL from config)
        return response.read().decode("utf-8")


_token_cache = {}


def handler(event, context):
    import boto3  # in the Lambda runtime; imported here so that the pure functions above test without it

    env = os.environ
    if "token" not in _token_cache:
        secrets = boto3.client("secretsmanager")
        _token_cache["token"] = secrets.get_secret_value(SecretId=env["TOKEN_SECRET_ARN"])["SecretString"]
    counts = parse_files_by_state(read_metrics_page(env["STATUS_URL"].rstrip("/") + "/metrics", _token_cache["token"]))

    ecs = boto3.client("ecs")
    services = ecs.describe_services(cluster=env["CLUSTER"], services=list(ROLE_STATES))["services"]
    running = {service["serviceName"]: service["runningCount"] for service in services}

    settings = {
        "transcoder": (float(env["TRANSCODER_FILES_PER_TASK"]), int(env["TRANSCODER_MAX"])),
        "archiver": (float(env["ARCHIVER_FILES_PER_TASK"]), int(env["ARCHIVER_MAX"])),
    }
    decisions = decide(counts, running, settings)

    metric_data = []
    for role, values in decisions.items():
        for name, value in values.items():
            metric_data.append({
                "MetricName": name,
                "Dimensions": [{"Name": "Stack", "Value": env["STACK"]}, {"Name": "Role", "Value": role}],
                "Value": float(value),
                "Unit": "Count",
            })
    boto3.client("cloudwatch").put_metric_data(Namespace=env["NAMESPACE"], MetricData=metric_data)
    print(json.dumps({"counts": counts, "decisions": decisions}))
    return decisions
