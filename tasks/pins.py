"""Every pinned version, in one place.

The hub's virtualenv, the notebook image and the proxy all read from here, so
the single-user servers always match the hub.
"""

JUPYTERHUB = "6.1.1"
OAUTHENTICATOR = "17.4.0"
DOCKERSPAWNER = "14.0.0"
IDLE_CULLER = "2.0.0"
JUPYTERLAB = "4.6.6"
IPYKERNEL = "7.4.0"
# In the notebook image: course links pull a course's material from git (fab course-link).
NBGITPULLER = "1.3.0"
# In the notebook image: assignments with nbgrader, on for a course (HUBSWARM_COURSE_ID), off otherwise.
NBGRADER = "0.9.6"
CONFIGURABLE_HTTP_PROXY = "5.3.0"
# jsonschema 4.25 made its format-nongpl extra (which the hub and the notebook servers get through
# jupyter-events) install rfc3987-syntax, whose import builds a grammar: a second of CPU at every
# hub and server start. 4.24 checks the same formats without it.
JSONSCHEMA = "4.24.1"
# configurable-http-proxy 5.x supports Node.js 18 and newer.
NODEJS_MIN_MAJOR = 18
# The npm that installs the proxy where the distribution's npm is not there already (npm 10.9
# supports Node.js 18.17 and newer); its integrity as the npm registry publishes it.
NPM = "10.9.2"
NPM_INTEGRITY = "sha512-iriPEPIkoMYUy3F6f3wwSZAU93E0Eg6cHwIR6jzzOXWSy+SD/rOODEs74cVONHKSx2obXtuUoyidVEhISrisgQ=="

# Installs the hub's venv (pip took 12 s for what uv does in 3).
UV = "0.13.9"

# The hub's own AWS clients (the backups' uploads to S3 in the hub's venv; certbot's Route53 plugin
# in a venv of its own, for fab letsencrypt) read AWS_ENDPOINT_URL_* from /etc/hubswarm/aws.env,
# which botocore does from 1.31 (Debian 12's python3-botocore is 1.29). boto3 pins its botocore.
BOTO3 = "1.44.18"
CERTBOT = "5.8.0"
CERTBOT_DNS_ROUTE53 = "5.8.0"

CERTBOT_REQUIREMENTS = {
    "certbot": CERTBOT,
    "certbot-dns-route53": CERTBOT_DNS_ROUTE53,
    "boto3": BOTO3,
}

HUB_REQUIREMENTS = {
    "jupyterhub": JUPYTERHUB,
    "oauthenticator": OAUTHENTICATOR,
    "dockerspawner": DOCKERSPAWNER,
    "jupyterhub-idle-culler": IDLE_CULLER,
    "jsonschema": JSONSCHEMA,
    "boto3": BOTO3,
}
