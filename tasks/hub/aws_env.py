"""Where the hub's own AWS clients find AWS: ``/etc/hubswarm/aws.env``.

Every AWS client hubswarm runs on the hub reads its environment from this one file (a unit's
``EnvironmentFile=``, certbot's renewal): the cluster's region and, with
HUBSWARM_HUB_AWS_ENDPOINTS, boto3's endpoint variables. It holds no credentials: boto3 finds
the hub's instance role's in the instance metadata (``fab hub-role`` makes the role).
"""

import shlex

from ..core import facts, step
from ..settings.kinds import aws_endpoints

CONFIG_DIR = "/etc/hubswarm"
AWS_ENV = f"{CONFIG_DIR}/aws.env"


def endpoint_variable(service):
    """boto3's variable for the endpoint of ``service`` ("": every service)."""
    return f"AWS_ENDPOINT_URL_{service.upper()}" if service else "AWS_ENDPOINT_URL"


def aws_env_text(config):
    """The file's text: ``NAME=value`` lines, as systemd's ``EnvironmentFile=`` and a shell read them."""
    variables = {"AWS_DEFAULT_REGION": config.region}
    variables.update((endpoint_variable(service), url) for service, url in aws_endpoints(config.hub_aws_endpoints))
    lines = [f"{name}={shlex.quote(value)}" for name, value in variables.items()]
    header = "# The hub's AWS clients' region and endpoints, written by hubswarm (setup-hub); no credentials here."
    return "\n".join([header, *lines]) + "\n"


@step("aws-env", probes=lambda host: [facts.dir_state(CONFIG_DIR), facts.file_state(AWS_ENV)])
def aws_env(host):
    """The region and endpoints of the hub's own AWS clients in /etc/hubswarm/aws.env (their
    credentials: the hub's instance role's, from its instance metadata)."""
    host.ensure_dir(CONFIG_DIR, mode="700")
    host.ensure_file(AWS_ENV, aws_env_text(host.config))
