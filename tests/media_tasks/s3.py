"""The S3-compatible server of the MEDIA_STORAGE=s3 tests (moto's, in a process of its own)
and what they share about it; its fixtures are in conftest.py."""

from __future__ import annotations

from typing import Any

import boto3

REGION = "eu-west-1"
CREDENTIALS = {"aws_access_key_id": "moto-test-key", "aws_secret_access_key": "moto-test-secret"}
# Small sizes, so that small pictures still give several renditions each.
THUMBNAIL_SIZES = "100,50"


def s3_client(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, region_name=REGION, **CREDENTIALS)
