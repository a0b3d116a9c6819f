"""Start moto's S3 server with two fixes to its SigV4 checking, so it judges signatures as AWS does.

moto 5 (checked with 5.2.1) verifies a request's signature against the path *after* werkzeug decoded it, so a
correctly signed request for a key with '+' or non-ASCII characters is refused even when boto3 sends it; and a
presigned (query-signed) request makes it fail with a 500, because it reads the Authorization header
unconditionally. AWS signs and checks the path exactly as sent, and accepts query signatures.

This launcher keeps moto's own verification (botocore's signer, moto's IAM keys and policies) and only:
  1. hands it the raw request path (werkzeug's RAW_URI) for S3 requests;
  2. verifies query-signed S3 requests itself (AWS4-HMAC-SHA256, expiry checked) with the key's secret from
     moto's IAM backend, and answers 403 AccessDenied to S3 requests that carry no signature at all.

With MOTO_ACCESS_KEY_ID and MOTO_SECRET_ACCESS_KEY set, it also creates, before serving, an IAM user allowed
everything whose access key is exactly that pair, so a stack with fixed local credentials (docker/compose.local.yml)
can enforce signatures from the first request (INITIAL_NO_AUTH_ACTION_COUNT=0).

Usage: python3 moto_server.py [moto server arguments, e.g. -H 127.0.0.1 -p 5000]
"""
import datetime
import hashlib
import hmac
from urllib.parse import parse_qsl, quote, urlsplit

import flask
from moto import settings
from moto.core.authorization import ActionAuthenticatorMixin
from moto.iam.access_control import CreateAccessKeyFailure, S3IAMRequest, create_access_key
from moto.s3.exceptions import S3AccessDeniedError, S3InvalidAccessKeyIdError, S3SignatureDoesNotMatchError
from moto.server import main

original_authenticate = ActionAuthenticatorMixin._authenticate_and_authorize_action


def _sign(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def _verify_query_signature(account_id: str, method: str, raw_uri: str, headers) -> None:
    path, _, query = raw_uri.partition("?")
    pairs = parse_qsl(query, keep_blank_values=True)
    params = dict(pairs)
    try:
        access_key_id, date, region, service, terminator = params["X-Amz-Credential"].split("/")
        amz_date = params["X-Amz-Date"]
        expires = int(params["X-Amz-Expires"])
        signed_headers = params["X-Amz-SignedHeaders"].split(";")
        signature = params["X-Amz-Signature"]
    except (KeyError, ValueError):
        raise S3AccessDeniedError()
    if params.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256" or terminator != "aws4_request":
        raise S3AccessDeniedError()
    signed_at = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    if not 1 <= expires <= 604800 or datetime.datetime.now(datetime.timezone.utc) > signed_at + datetime.timedelta(seconds=expires):
        raise S3AccessDeniedError()
    try:
        access_key = create_access_key(account_id=account_id, partition="aws", access_key_id=access_key_id, headers={})
    except CreateAccessKeyFailure:
        raise S3InvalidAccessKeyIdError()
    secret = access_key.create_credentials().secret_key

    canonical_query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(pairs) if k != "X-Amz-Signature"
    )
    canonical_headers = "".join(f"{name}:{' '.join(str(headers.get(name, '')).split())}\n" for name in signed_headers)
    canonical_request = "\n".join(
        [method, path, canonical_query, canonical_headers, ";".join(signed_headers), "UNSIGNED-PAYLOAD"]
    )
    scope = f"{date}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()]
    )
    key = _sign(_sign(_sign(_sign(("AWS4" + secret).encode("utf-8"), date), region), service), "aws4_request")
    expected = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise S3SignatureDoesNotMatchError()


def authenticate_as_aws_does(self, iam_request_cls, resource="*"):
    if ActionAuthenticatorMixin.request_count < settings.INITIAL_NO_AUTH_ACTION_COUNT or iam_request_cls is not S3IAMRequest:
        return original_authenticate(self, iam_request_cls, resource)
    raw_uri = flask.request.environ.get("RAW_URI") or flask.request.environ.get("REQUEST_URI")
    if not raw_uri:
        return original_authenticate(self, iam_request_cls, resource)
    if "Authorization" not in self.headers:
        if "X-Amz-Signature=" in raw_uri:
            return _verify_query_signature(self.current_account, self.method, raw_uri, self.headers)
        raise S3AccessDeniedError()
    parsed = urlsplit(self.uri)
    saved_uri = self.uri
    self.uri = f"{parsed.scheme}://{parsed.netloc}{raw_uri}"
    try:
        return original_authenticate(self, iam_request_cls, resource)
    finally:
        self.uri = saved_uri


ActionAuthenticatorMixin._authenticate_and_authorize_action = authenticate_as_aws_does

def create_fixed_credentials(access_key_id: str, secret_access_key: str) -> None:
    import json
    import os

    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.iam.models import iam_backends

    backend = iam_backends[DEFAULT_ACCOUNT_ID]["aws"]
    user_name = os.environ.get("MOTO_USER_NAME", "personal-backup-local")
    backend.create_user("us-east-1", user_name)
    backend.put_user_policy(user_name, "everything", json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    key = backend.create_access_key(user_name)
    del backend.access_keys[key.physical_resource_id]
    key.access_key_id, key.secret_access_key = access_key_id, secret_access_key
    backend.access_keys[key.physical_resource_id] = key


if __name__ == "__main__":
    import os

    if os.environ.get("MOTO_ACCESS_KEY_ID") and os.environ.get("MOTO_SECRET_ACCESS_KEY"):
        create_fixed_credentials(os.environ["MOTO_ACCESS_KEY_ID"], os.environ["MOTO_SECRET_ACCESS_KEY"])
    main()
