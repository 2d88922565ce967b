"""The hub's backups in S3 (HUBSWARM_BACKUP_BUCKET), by name.

The hub's backup tool runs ``python -m hubswarm_hub.backups upload ARCHIVE ...`` after each
archive it takes into the shared storage: the same archive goes to the bucket, encrypted at rest,
and only the newest HUBSWARM_BACKUP_KEEP of the cluster's stay there. ``fab backup --list``,
``fab restore`` and ``fab status`` read the bucket with :func:`bucket_archives`, from the
operator's machine. Every call takes a boto3 S3 client: the hub makes its own (its instance role's
credentials, /etc/hubswarm/aws.env's region and endpoints), the operator's comes from their settings.

An archive's key is the setting's prefix, then its name in the shared storage. Only keys that start
with the cluster's :func:`archives_prefix` are listed or deleted: the hub's instance role may touch
no others (tasks.aws.iam), and another cluster's archives, or anything else under the prefix, stay.
"""

import argparse
import re
import sys
from pathlib import Path

# SSE-S3: every archive is encrypted at rest by S3 (the role's policy refuses a PutObject without it).
ENCRYPTION = "AES256"


def archive_start(cluster):
    """How every name of the cluster's archives starts."""
    return f"hubswarm-{cluster}-"


def archive_name(cluster, stamp):
    return f"{archive_start(cluster)}{stamp}.tar.gz"


def archive_pattern(cluster):
    """The names of a cluster's archives, oldest first when sorted."""
    return re.compile(re.escape(archive_name(cluster, "@")).replace("@", "[0-9]{8}T[0-9]{6}Z"))


def bucket_and_prefix(setting):
    """(bucket, key prefix) of a HUBSWARM_BACKUP_BUCKET ``bucket`` or ``bucket/some/prefix``: the
    prefix "" or ending in "/"."""
    bucket, _, prefix = setting.strip().removeprefix("s3://").strip("/").partition("/")
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/" if prefix else ""


def archives_prefix(setting, cluster):
    """The start of every key of the cluster's archives in the bucket (after its name)."""
    return bucket_and_prefix(setting)[1] + archive_start(cluster)


def bucket_url(setting):
    bucket, prefix = bucket_and_prefix(setting)
    return f"s3://{bucket}/{prefix}"


def bucket_archives(s3, setting, cluster):
    """The cluster's archives in the bucket: [(name, size, mtime)], oldest first."""
    bucket, prefix = bucket_and_prefix(setting)
    pattern = archive_pattern(cluster)
    found = []
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=archives_prefix(setting, cluster))
    for page in pages:
        for each in page.get("Contents", []):
            name = each["Key"][len(prefix) :]
            if pattern.fullmatch(name):
                found.append((name, each["Size"], int(each["LastModified"].timestamp())))
    return sorted(found)


def read_archive(s3, setting, name):
    """The bytes of the archive ``name`` in the bucket."""
    bucket, prefix = bucket_and_prefix(setting)
    return s3.get_object(Bucket=bucket, Key=prefix + name)["Body"].read()


def upload(s3, path, setting, cluster, keep):
    """Put the archive at ``path`` into the bucket, encrypted at rest, then delete all but the
    newest ``keep`` of the cluster's archives there; the names deleted."""
    bucket, prefix = bucket_and_prefix(setting)
    path = Path(path)
    if not archive_pattern(cluster).fullmatch(path.name):
        raise ValueError(f"{path.name} is not an archive of cluster {cluster}")
    # One PUT (an archive is far below its 5 GB): a multipart upload's parts carry no encryption
    # header, which the role's policy asks of every PutObject.
    with path.open("rb") as body:
        s3.put_object(Bucket=bucket, Key=prefix + path.name, Body=body, ServerSideEncryption=ENCRYPTION)
    names = [name for name, _, _ in bucket_archives(s3, setting, cluster)]
    old = names[:-keep]
    for name in old:
        s3.delete_object(Bucket=bucket, Key=prefix + name)
    return old


def main(argv=None):
    """``upload ARCHIVE --bucket SETTING --cluster NAME --keep N``: the backup tool's step into S3."""
    parser = argparse.ArgumentParser(prog="python -m hubswarm_hub.backups")
    commands = parser.add_subparsers(dest="command", required=True)
    put = commands.add_parser("upload", help="put an archive into the bucket and keep the newest")
    put.add_argument("archive")
    put.add_argument("--bucket", required=True)
    put.add_argument("--cluster", required=True)
    put.add_argument("--keep", type=int, required=True)
    arguments = parser.parse_args(argv)

    import boto3  # the hub's venv has it; its region and endpoints come from the unit's environment
    from botocore.exceptions import BotoCoreError, ClientError

    url = bucket_url(arguments.bucket)
    try:
        old = upload(boto3.client("s3"), arguments.archive, arguments.bucket, arguments.cluster, arguments.keep)
    except (BotoCoreError, ClientError, OSError, ValueError) as exc:
        print(f"hubswarm-backup: could not put {arguments.archive} into {url}: {exc}", file=sys.stderr)
        return 1
    gone = f", {len(old)} older removed" if old else ""
    print(f"hubswarm-backup: {Path(arguments.archive).name} in {url} (encrypted: {ENCRYPTION}){gone}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
