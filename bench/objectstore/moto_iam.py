#!/usr/bin/env python3
"""Starts moto's server on a free loopback port with SigV4 checking on, and creates an IAM user whose key is allowed
everything. Prints shell `export` lines (TEST_S3_* and AWS_*) and the server's pid on stdout.

moto checks signatures only after INITIAL_NO_AUTH_ACTION_COUNT requests, so exactly the three IAM calls below run
unauthenticated; the port is awaited with a plain TCP connect, which is not a request.
"""
import json
import os
import socket
import subprocess
import sys
import time

import boto3

FREE_REQUESTS = 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    port = free_port()
    log = open(os.environ.get("MOTO_LOG", os.devnull), "ab")
    env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT=str(FREE_REQUESTS))
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env, stdout=log, stderr=log, start_new_session=True,
    )
    deadline = time.time() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if server.poll() is not None or time.time() > deadline:
                sys.exit("moto_server did not start")
            time.sleep(0.2)

    endpoint = f"http://127.0.0.1:{port}"
    iam = boto3.client(
        "iam", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap",
    )
    iam.create_user(UserName="objectstore-tests")
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    iam.put_user_policy(UserName="objectstore-tests", PolicyName="all", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="objectstore-tests")["AccessKey"]

    print(f"export TEST_S3_ENDPOINT={endpoint}")
    print("export TEST_S3_REGION=us-east-1")
    print(f"export TEST_S3_ACCESS_KEY_ID={key['AccessKeyId']}")
    print(f"export TEST_S3_SECRET_ACCESS_KEY={key['SecretAccessKey']}")
    print(f"export MOTO_PID={server.pid}")


if __name__ == "__main__":
    main()
