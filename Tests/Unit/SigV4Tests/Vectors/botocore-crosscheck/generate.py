#!/usr/bin/env python3
"""Cross-check values for Tests/SigV4Tests/S3VectorTests.swift, produced by botocore's own S3 signers.

Run: python3 generate.py  (needs botocore; the values in the Swift tests came from botocore 1.43.11).
Prints, for each case, botocore's canonical request, string to sign, signature and the signed
Authorization header or presigned URL. Nothing here is used at test time; it documents where the
expected values in the Swift tests come from so anyone can regenerate them.
"""
import datetime
import types
from unittest import mock

from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

WHEN = datetime.datetime(2024, 2, 29, 23, 59, 59)  # leap day, one second before midnight UTC
TEMPORARY = Credentials("ASIAEXAMPLEKEY123456", "s3cr3t/Key+With=Symbols", "FwoGZXIvYXdzE+token/with==")
KEY = "photos/2008 summer/Ünïcödé+plus=eq ☃.jpg"
# What SigV4URIEncoding.s3Path(forKey:prefix:) must produce, path-style below the bucket.
PATH = "/backup-bucket/photos/2008%20summer/%C3%9Cn%C3%AFc%C3%B6d%C3%A9%2Bplus%3Deq%20%E2%98%83.jpg"
URL = "https://localhost:9000" + PATH
UNSIGNED_CONFIG = types.SimpleNamespace(s3={"payload_signing_enabled": False})


def show(name, auth, request):
    # Record the intermediate values add_auth computes (recomputing afterwards would include its output).
    seen = {}
    for step in ("canonical_request", "string_to_sign", "signature"):
        original = getattr(auth, step)

        def record(*args, _step=step, _original=original):
            seen[_step] = _original(*args)
            return seen[_step]

        setattr(auth, step, record)
    with mock.patch("botocore.auth.get_current_datetime", return_value=WHEN):
        auth.add_auth(request)
    print(f"== {name}\n-- canonical request\n{seen['canonical_request']}")
    print(f"-- string to sign\n{seen['string_to_sign']}\n-- signature\n{seen['signature']}")
    if "Authorization" in request.headers:
        print(f"-- Authorization\n{request.headers['Authorization']}")
    print(f"-- url\n{request.url}\n")


# 1. PUT of a body under a key with spaces, unicode, '+' and '=', temporary credentials, non-default port.
put = AWSRequest(
    "PUT", URL, data=b"hello",
    headers={"Content-Type": "image/jpeg", "x-amz-storage-class": "DEEP_ARCHIVE"},
)
show("put-unicode-key", S3SigV4Auth(TEMPORARY, "s3", "eu-west-1"), put)

# 2. UploadPart with an unsigned payload and an upload id full of '/', '+' and '='.
part = AWSRequest("PUT", URL, data=b"part", params={"partNumber": "3", "uploadId": "2~abc/def+g=="})
part.context["client_config"] = UNSIGNED_CONFIG
show("upload-part-unsigned", S3SigV4Auth(TEMPORARY, "s3", "eu-west-1"), part)

# 3. Presigned GET with a response-header override whose value needs encoding, temporary credentials.
get = AWSRequest(
    "GET", URL, params={"response-content-disposition": 'attachment; filename="a b.jpg"'}
)
show("presign-get-unicode-key", S3SigV4QueryAuth(TEMPORARY, "s3", "eu-west-1", expires=604800), get)
