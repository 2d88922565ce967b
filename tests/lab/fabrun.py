"""Run ``fab`` as a user would, and read the recap it prints."""

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import boto3

PROJECT = Path(__file__).resolve().parents[2]


@dataclass
class FabRun:
    args: tuple
    code: int
    output: str  # stdout and stderr together

    def timed_rows(self):
        """(host, task, status, seconds) of each recap row."""
        lines = self.output.splitlines()
        start = next(i for i, line in enumerate(lines) if line.startswith("RECAP"))
        rows = []
        for line in lines[start + 2 :]:
            words = line.split()
            if len(words) < 4 or "=" in words[0] or line.startswith("failed:"):
                break
            status = " ".join(words[2:-1])
            rows.append((words[0], words[1], status, float(words[-1].rstrip("s"))))
        return rows

    def rows(self):
        """(host, task, status) of each recap row."""
        return [row[:3] for row in self.timed_rows()]

    def changed(self):
        return [(host, task) for host, task, status in self.rows() if status in ("changed", "would change")]

    def failed(self):
        return [(host, task) for host, task, status in self.rows() if status == "failed"]


def fab(*args, env=None, timeout=1500, project=PROJECT):
    """Run ``fab ARGS`` in the project (or another copy of it), settings from the lab;
    never raises on failure."""
    result = subprocess.run(
        ["fab", *args],
        cwd=project,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )
    return FabRun(args, result.returncode, result.stdout)


def lab_aws(env, service):
    """boto3's ``service`` client as the deployment reaches the lab's moto, with the lab's
    settings ``env`` (the one moto answers every service at the EC2 endpoint)."""
    return boto3.client(
        service,
        endpoint_url=env["AWS_ENDPOINT_URL_EC2"],
        region_name=env["AWS_DEFAULT_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )
