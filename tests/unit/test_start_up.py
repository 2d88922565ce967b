"""What every `fab` command loads before it runs a task: libraries only some tasks
need (EC2, templates) wait until one of those runs."""

import subprocess
import sys

from fakehost import ROOT

LATER = ("boto3", "botocore", "jinja2")


def test_loading_the_tasks_leaves_ec2_and_templates_for_later():
    probe = f"import sys, fabfile; print(*[m for m in {LATER!r} if m in sys.modules])"
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == []
