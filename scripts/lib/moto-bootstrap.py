"""Create an IAM user with full access and an access key on a fresh moto server, then print shell exports.

moto enforces SigV4 only after INITIAL_NO_AUTH_ACTION_COUNT requests; this script spends exactly those free
requests (four) on creating the credentials the tests then sign with. Any later unsigned or badly signed
request is rejected, as on AWS.
"""
import json
import sys

import boto3

endpoint = sys.argv[1]
iam = boto3.client(
    "iam", endpoint_url=endpoint, region_name="us-east-1",
    aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap",
)
iam.create_user(UserName="personal-backup-tests")                                              # request 1
policy = iam.create_policy(                                                                     # request 2
    PolicyName="personal-backup-tests-all",
    PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["s3:*", "sts:*", "iam:*"], "Resource": "*"}],
    }),
)
iam.attach_user_policy(UserName="personal-backup-tests", PolicyArn=policy["Policy"]["Arn"])    # request 3
key = iam.create_access_key(UserName="personal-backup-tests")["AccessKey"]                     # request 4
print(f"export TEST_S3_ACCESS_KEY_ID={key['AccessKeyId']}")
print(f"export TEST_S3_SECRET_ACCESS_KEY={key['SecretAccessKey']}")
