"""Every setting, declared once: its variable, place in the config, default, kind and words.

The config (:func:`tasks.settings.defaults`), the checks (:mod:`tasks.settings.validate`),
the hub's env file (:func:`tasks.hub.auth.hub_secrets`), ``.env.example`` and the
README's table of settings (:mod:`tasks.settings.docs`) all come from
:data:`GROUPS`, in its order.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import pins
from . import kinds
from .kinds import HIDDEN, QUOTED, Kind, as_flag

PROJECT = Path(__file__).resolve().parents[2]

OAUTH = ("google", "github")
PASSWORD = "password"
AUTHENTICATORS = (*OAUTH, PASSWORD)


@dataclass(frozen=True)
class Derived:
    """A default that depends on the environment (or on where the project is), and its words."""

    value: Callable[[Mapping], Any]
    text: str


def in_project(name):
    return Derived(lambda environ: str(PROJECT / name), f"`{name}` in the project")


def lab_is_up(environ):
    """HUBSWARM_LAB in ``environ`` says on."""
    return as_flag(environ.get("HUBSWARM_LAB", "")) is True


@dataclass(frozen=True)
class Setting:
    variable: str
    kind: Kind
    doc: str  # one line: what it does (the README's table)
    key: tuple = ()  # its place in the ``hubswarm`` config; none: read for the hub's env file only
    default: Any = ""  # a value, or Derived
    example: str | None = None  # what .env.example shows, when not the default
    note: str = ""  # comment lines above it in .env.example
    fill_in: bool = False  # .env.example has it uncommented, to be filled in
    secret: bool = False  # masked in all output (tasks.core.secret)
    hub_env: str = ""  # its name in the hub's env file

    def value_in(self, environ):
        """Its value in ``environ`` (a mapping of variables), as written there; the default when unset."""
        value = environ.get(self.variable)
        if value is None or (self.kind.blank_is_unset and not str(value).strip()):
            return self.default.value(environ) if isinstance(self.default, Derived) else self.default
        return value

    def line(self, value):
        """One line naming the variable, the problem with ``value`` (normalised) and the fix; "" when fine."""
        problem = self.kind.check(value)
        if not problem:
            return ""
        if self.kind.show == HIDDEN:
            return f"{self.variable} {problem}"
        shown = f"{value!r} " if self.kind.show == QUOTED else ""
        fix = f"; {self.kind.fix}" if self.kind.fix else ""
        return f"{self.variable}: {shown}{problem}{fix}"


@dataclass(frozen=True)
class Group:
    """Settings that go together, under ``heading`` (comment lines) in .env.example."""

    heading: str
    settings: tuple
    in_env_example: bool = True


GROUPS = (
    Group(
        "Google OAuth client (https://console.developers.google.com/apis/credentials).",
        (
            Setting(
                "OAUTH_CLIENT_ID",
                kinds.ONE_LINE,
                "The OAuth client's id (`google` or `github` login).",
                fill_in=True,
                hub_env="OAUTH_CLIENT_ID",
            ),
            Setting(
                "OAUTH_CLIENT_SECRET",
                kinds.ONE_LINE,
                "The OAuth client's secret.",
                fill_in=True,
                secret=True,
                hub_env="OAUTH_CLIENT_SECRET",
            ),
            Setting(
                "OAUTH_CALLBACK_URL",
                kinds.CALLBACK_URL,
                "The OAuth client's redirect URI; unset: `https://HUBSWARM_DOMAIN/hub/oauth_callback`, "
                "else on the hub's EC2 public host name.",
                note="Must match the client's authorized redirect URI exactly. Default:\n"
                "https://$HUBSWARM_DOMAIN/hub/oauth_callback, else the hub's EC2 public hostname.",
                hub_env="OAUTH_CALLBACK_URL",
            ),
        ),
    ),
    Group(
        "",
        (
            Setting(
                "HUBSWARM_AUTHENTICATOR",
                kinds.choice(*AUTHENTICATORS),
                "How users log in: `google` or `github` (OAuth), or `password` (the lab only).",
                ("authenticator",),
                Derived(lambda environ: PASSWORD if lab_is_up(environ) else "google", "`google` (lab: `password`)"),
                example="google",
                note="google (default), github, or password (lab only); any case.",
            ),
            Setting(
                "HUBSWARM_DOMAIN",
                kinds.DNS,
                "The hub's DNS name: its certificate, URL and OAuth callback (unset: its EC2 public host name).",
                ("domain",),
                example="hub.example.com",
                note="The hub's DNS name (lower-cased); it and *.it must point at the hub.",
                fill_in=True,
            ),
            Setting(
                "HUBSWARM_SINGLE_ORIGIN",
                kinds.FLAG,
                "Serve every user's server on the hub's own name, not on a name of its own under it "
                "(no HUBSWARM_DOMAIN needed): a page a student's server serves can then act as whoever opens it.",
                ("single_origin",),
                False,
            ),
            Setting(
                "HUBSWARM_ROUTE53_ZONE",
                kinds.ROUTE53_ZONE,
                "The Route53 hosted zone (its id, or its name) that holds HUBSWARM_DOMAIN: hubswarm keeps the A "
                "records of the domain and of `*.` the domain pointing at the hub (unset: you make them).",
                ("route53_zone",),
                example="example.com",
                note="The Route53 hosted zone (its id Z..., or its name) that holds HUBSWARM_DOMAIN: setup-hub and\n"
                "deploy make or fix its A records HUBSWARM_DOMAIN and *.HUBSWARM_DOMAIN, pointing them at the\n"
                "hub's public IPv4 address, with this machine's AWS credentials, and let the hub's instance\n"
                "role answer ACME DNS challenges in the zone (fab hub-role). Unset: you make the two records.",
            ),
        ),
    ),
    Group(
        "The hub's own calls to AWS: credentials from its instance role (fab hub-role), region and\n"
        "endpoints from /etc/hubswarm/aws.env on the hub.",
        (
            Setting(
                "HUBSWARM_HUB_AWS_ENDPOINTS",
                kinds.AWS_ENDPOINTS,
                "Where the hub's own AWS clients send their calls: a URL for every service, or `SERVICE=URL` "
                "pairs, separated by commas (unset: AWS's own endpoints).",
                ("hub_aws_endpoints",),
                example="s3=https://s3.example.com:9000",
                note="Where the hub's own AWS clients send their calls (boto3's AWS_ENDPOINT_URL, or\n"
                "AWS_ENDPOINT_URL_<SERVICE> for SERVICE=URL: s3, route_53...). Unset: AWS's own endpoints.",
            ),
        ),
    ),
    Group(
        "Discovery: instances tagged hubswarm:cluster=<cluster> and hubswarm:role=hub|worker.",
        (
            Setting(
                "HUBSWARM_CLUSTER",
                kinds.CLUSTER,
                "The cluster: its instances' tag value, and part of its security groups' names.",
                ("cluster",),
                "hubswarm",
            ),
            Setting(
                "HUBSWARM_TAG_CLUSTER",
                kinds.TAG_KEY,
                "The EC2 tag key that names an instance's cluster.",
                ("tags", "cluster_key"),
                "hubswarm:cluster",
            ),
            Setting(
                "HUBSWARM_TAG_ROLE",
                kinds.TAG_KEY,
                "The EC2 tag key that names an instance's role (`hub` or `worker`).",
                ("tags", "role_key"),
                "hubswarm:role",
            ),
            Setting(
                "AWS_DEFAULT_REGION",
                kinds.REGION,
                "The AWS region of the cluster.",
                ("region",),
                Derived(lambda environ: environ.get("AWS_REGION") or "us-west-2", "`AWS_REGION`, else `us-west-2`"),
                example="us-west-2",
            ),
            Setting(
                "AWS_PROFILE",
                kinds.TEXT,
                "The AWS credentials profile (unset: boto3's standard credential chain; the lab's are its own).",
                ("profile",),
                example="default",
            ),
            Setting(
                "HUBSWARM_ADDRESS",
                kinds.choice("private", "public", "dns"),
                "How hosts are reached over SSH: their `private` or `public` address, or their `dns` name.",
                ("address",),
                "private",
                note="How to reach hosts over SSH: private (default), public or dns.",
            ),
            Setting(
                "HUBSWARM_GATEWAY",
                kinds.FLAG,
                "Reach workers through the hub (workers without a public address).",
                ("gateway",),
                False,
                note="Reach workers through the hub (1/0, true/false, yes/no, on/off).",
            ),
        ),
    ),
    Group(
        "SSH: login user and key (EC2: admin on Debian, ec2-user on Amazon Linux).",
        (
            Setting(
                "HUBSWARM_SSH_USER",
                kinds.LOGIN,
                "The SSH login user (unset: SSH's own choice).",
                ("ssh", "user"),
                example="admin",
            ),
            Setting(
                "HUBSWARM_SSH_KEY",
                kinds.KEY_FILE,
                "The private key of the instances' key pair (unset: SSH's own keys and agent).",
                ("ssh", "key"),
                example="~/.ssh/aws_key.pem",
            ),
            Setting(
                "HUBSWARM_KNOWN_HOSTS",
                kinds.KNOWN_HOSTS,
                "The known_hosts file hosts' keys are checked against.",
                ("ssh", "known_hosts"),
                "~/.ssh/known_hosts",
            ),
            Setting(
                "HUBSWARM_ACCEPT_NEW_HOST_KEYS",
                kinds.FLAG,
                "Trust a host whose key known_hosts lacks, and save its key there.",
                ("ssh", "accept_new_host_keys"),
                False,
                example="1",
                note="Trust hosts whose key is not in known_hosts yet (first contact with new instances):\n"
                "the file is created if missing and new keys are saved to it, so later runs check them.",
            ),
        ),
    ),
    Group(
        "Notebooks.",
        (
            Setting(
                "HUBSWARM_IMAGE",
                kinds.IMAGE,
                "The notebook image.",
                ("image",),
                f"hubswarm/singleuser:{pins.JUPYTERHUB}",
            ),
            Setting(
                "HUBSWARM_IMAGE_SOURCE",
                kinds.choice("push", "pull"),
                "`push`: build `files/singleuser` here and stream it to the nodes; `pull`: from a registry.",
                ("image_source",),
                "pull",
                note="push: build files/singleuser here and stream it to the nodes; pull: from a registry.",
            ),
            Setting(
                "HUBSWARM_IMAGE_PULL",
                kinds.choice("missing", "always"),
                "Pull where a node lacks the image (`missing`), or ask the registry on every run (`always`).",
                ("image_pull",),
                "missing",
                note="Pull mode: missing (pull where a node lacks the image) or always (ask the registry on\n"
                "every run whether the tag moved; name the image by digest, repo@sha256:..., to pin it).",
            ),
            Setting(
                "HUBSWARM_IMAGE_BASE",
                kinds.IMAGE,
                "The image `push` builds the notebook image from.",
                ("image_base",),
                "debian:bookworm-slim",
            ),
            Setting(
                "HUBSWARM_MEM_LIMIT",
                kinds.MEMORY,
                "The most memory a notebook may use: a number with K, M, G or T, or bytes; at least 6M.",
                ("mem_limit",),
                "2G",
                note="Per notebook: a number with K, M, G or T (JupyterHub's syntax), or bytes; at least 6M.",
            ),
            Setting(
                "HUBSWARM_MEM_GUARANTEE",
                kinds.MEMORY_OR_NONE,
                "Memory each notebook is guaranteed: swarm places it only where that still fits "
                "(unset: half the limit; 0: none).",
                ("mem_guarantee",),
                example="1G",
                note="Guaranteed to each notebook: swarm places one only on a worker where its guarantee still\n"
                'fits, so a full worker is never overcommitted (a user then reads "no room on any worker").\n'
                "Memory: default half of HUBSWARM_MEM_LIMIT; 0 for none. CPUs: a number such as 0.5; 0 for none.",
            ),
            Setting(
                "HUBSWARM_CPU_GUARANTEE",
                kinds.CPUS,
                "CPUs each notebook is guaranteed, such as 0.5 (0: none).",
                ("cpu_guarantee",),
                "0",
            ),
            Setting(
                "HUBSWARM_CPU_LIMIT",
                kinds.CPUS,
                "The most CPUs a notebook may use (0: no limit).",
                ("cpu_limit",),
                "0",
            ),
            Setting(
                "HUBSWARM_PIDS_LIMIT",
                kinds.COUNT,
                "The most processes and threads a notebook may run (0: no limit).",
                ("pids_limit",),
                "1024",
                note="The most processes and threads one notebook may run (a fork bomb stops there); 0 for none.",
            ),
            Setting(
                "HUBSWARM_PROFILES",
                kinds.PROFILES_FILE,
                "A YAML file of profiles a user chooses from as their server starts: image, memory, CPUs, "
                "node label, groups (unset: none, no choice).",
                ("profiles",),
                example="profiles.yaml",
                note="Profiles: a YAML file of environments a user chooses from on the spawn page (see\n"
                "profiles.example.yaml); a key a profile leaves out takes the setting above. Unset: none.",
            ),
            Setting(
                "HUBSWARM_HUB_TAKES_NOTEBOOKS",
                kinds.FLAG,
                "The hub runs notebooks too, besides the workers.",
                ("hub_takes_notebooks",),
                False,
            ),
            Setting(
                "HUBSWARM_NOTEBOOK_EGRESS",
                kinds.EGRESS,
                "What notebooks reach besides the hub's API: `internet`, `none`, or IPv4 networks separated by commas.",
                ("notebook_egress",),
                "internet",
                note="What a notebook may reach besides the hub's API: internet (every public address), none,\n"
                "or IPv4 networks separated by commas (only those; private ones too, if you name them).\n"
                "Instance metadata, the nodes and other notebooks are out of reach in every case.",
            ),
            Setting(
                "HUBSWARM_COURSE_ID",
                kinds.COURSE_ID,
                "The course whose assignments nbgrader hands out: its exchange, its instructors' course "
                "directory and formgrader (unset: none, nbgrader off).",
                ("course_id",),
                example="cs101",
                note="Assignments with nbgrader (see Running a course in the README): the course's id, of\n"
                "letters, digits, '-' and '_'. Unset: none, nbgrader off in every server.",
            ),
        ),
    ),
    Group(
        "During a term (each change restarts the hub only; running servers stay).",
        (
            Setting(
                "HUBSWARM_CULL_IDLE",
                kinds.SECONDS,
                "Seconds an idle server runs before it is stopped.",
                ("cull_idle",),
                "3600",
                note="Idle servers stop after this many seconds; any server after MAX_AGE (0: never).",
            ),
            Setting(
                "HUBSWARM_CULL_MAX_AGE",
                kinds.COUNT,
                "Seconds any server runs before it is stopped (0: no limit).",
                ("cull_max_age",),
                "0",
            ),
            Setting(
                "HUBSWARM_CONCURRENT_SPAWN_LIMIT",
                kinds.COUNT,
                "Servers starting at once; past it a student is asked to try again (0: no limit).",
                ("concurrent_spawn_limit",),
                "100",
                note="Servers starting at once, and running at once (0: no limit); named servers on or off.\n"
                "Past the first limit a student is asked to try again in 30-60 s: set it to what your\n"
                "workers can start together (bench/load.py measures it).",
            ),
            Setting(
                "HUBSWARM_ACTIVE_SERVER_LIMIT",
                kinds.COUNT,
                "Servers running at once (0: no limit).",
                ("active_server_limit",),
                "0",
            ),
            Setting(
                "HUBSWARM_NAMED_SERVERS",
                kinds.FLAG,
                "Users may run named servers besides their default one.",
                ("named_servers",),
                False,
            ),
            Setting(
                "HUBSWARM_NAMED_SERVER_LIMIT",
                kinds.COUNT,
                "Named servers a user may have, when they may (0: no limit).",
                ("named_server_limit",),
                "2",
            ),
            Setting(
                "HUBSWARM_CONFIG_D",
                kinds.LOCAL_PATH,
                "A folder of your own JupyterHub settings (`*.py`), loaded after hubswarm's.",
                ("config_d",),
                in_project("jupyterhub_config.d"),
                example="jupyterhub_config.d",
                note="Your own JupyterHub settings: the *.py files of this folder, loaded after the generated\n"
                "configuration (checked for syntax here, and part of what restarts the hub).",
            ),
            Setting(
                "HUBSWARM_METRICS_TOKEN",
                kinds.token(32),
                "The token a Prometheus scrape of `/hub/metrics` uses (`openssl rand -hex 32`).",
                note="A Prometheus scrape of /hub/metrics uses this token (and it can read nothing else).",
                secret=True,
                hub_env="METRICS_API_TOKEN",
            ),
        ),
    ),
    Group(
        "Security updates: every node installs them daily on its own (unattended-upgrades or\n"
        "dnf-automatic), never rebooting and never upgrading Docker. 0 turns automatic upgrades\n"
        "off on every node (the distribution's own unattended-upgrades too): you upgrade them.",
        (
            Setting(
                "HUBSWARM_SECURITY_UPDATES",
                kinds.FLAG,
                "Every node installs security updates daily by itself (0: no automatic upgrade on any node).",
                ("security_updates",),
                True,
            ),
        ),
    ),
    Group(
        "Swarm managers: they keep the swarm's state (its nodes, the notebooks' services), so the\n"
        "swarm outlives any one of them: 3 survive 1 lost, 5 survive 2.",
        (
            Setting(
                "HUBSWARM_MANAGERS",
                kinds.MANAGERS,
                "The swarm's managers, by address or node name, separated by commas: the hub and 2 or 4 workers "
                "(unset: the hub and the first 2 ready workers, the hub alone below 3 nodes).",
                ("managers",),
                example="10.0.1.10,10.0.1.11,10.0.1.12",
                note="The hub and 2 or 4 workers, by address or node name (docker node ls). Unset: the hub and\n"
                "the first 2 ready workers; the hub alone below 3 nodes.",
            ),
        ),
    ),
    Group(
        "Shared homes: the EFS file system (DNS name or IP) mounted at /mnt/nfs/home on every\n"
        'node, or "none" to keep homes on the hub only.',
        (
            Setting(
                "HUBSWARM_EFS",
                kinds.EFS,
                "The EFS file system (DNS name or IPv4 address) holding the homes (`none`: homes on the hub only).",
                ("efs",),
                example="fs-0123456789abcdef0.efs.us-west-2.amazonaws.com",
            ),
            Setting(
                "HUBSWARM_EFS_BACKUPS",
                kinds.FLAG,
                "With the homes on EFS, turn on EFS's automatic backups of its file system (daily, kept 35 days), "
                "from this machine (0: leave them as they are).",
                ("efs_backups",),
                True,
                note="EFS's automatic backups (AWS Backup, daily, kept 35 days) of the homes' file system: turned\n"
                "on by setup-hub and deploy (fab efs-backups), shown by fab status; 0 leaves them as they are.",
            ),
            Setting(
                "HUBSWARM_HOMES_PATH",
                kinds.REMOTE_PATH,
                "Where every node mounts the homes.",
                ("homes_path",),
                "/mnt/nfs/home",
            ),
            Setting(
                "HUBSWARM_NOTEBOOKS",
                kinds.LOCAL_PATH,
                "The starter notebooks every home gets (read-only).",
                ("notebooks",),
                in_project("notebooks"),
                example="notebooks",
            ),
            Setting(
                "HUBSWARM_USERLIST",
                kinds.LOCAL_PATH,
                "The hub's users: one `email [admin] [instructor] [group:NAME ...]` per line.",
                ("userlist",),
                in_project("userlist"),
                example="userlist",
            ),
        ),
    ),
    Group(
        "Backups the hub takes by itself, into the shared storage (a lost hub leaves them) and, with\n"
        "HUBSWARM_BACKUP_BUCKET, into S3 too: fab backup --list shows them, fab restore with no\n"
        "--archive restores the latest. They hold the hub's secrets: README, Backups.",
        (
            Setting(
                "HUBSWARM_BACKUP_EVERY",
                kinds.SECONDS_OR_OFF,
                "Seconds between the hub's own backups of its state into the shared storage (0: none).",
                ("backup_every",),
                "3600",
            ),
            Setting(
                "HUBSWARM_BACKUP_KEEP",
                kinds.AT_LEAST_ONE,
                "How many of the hub's own backups the shared storage, and the bucket, keep (the oldest go).",
                ("backup_keep",),
                "48",
            ),
            Setting(
                "HUBSWARM_BACKUP_BUCKET",
                kinds.BACKUP_BUCKET,
                "An S3 bucket (`bucket` or `bucket/prefix`) the hub puts each of its own backups into too, "
                "encrypted at rest, with its instance role's credentials (unset: the shared storage only).",
                ("backup_bucket",),
                example="my-bucket/hubswarm",
                note="An S3 bucket, or bucket/prefix, the hub puts each of its backups into too (SSE-S3), keeping\n"
                "the newest HUBSWARM_BACKUP_KEEP of the cluster's there; its instance role may write and delete\n"
                "those archives only (fab hub-role). Make the bucket private (README: Backups).",
            ),
        ),
    ),
    Group(
        "Let's Encrypt (fab letsencrypt): extra names, contact, ACME server.",
        (
            Setting(
                "HUBSWARM_LETSENCRYPT_DOMAINS",
                kinds.DNS_LIST,
                "Names the certificate holds besides HUBSWARM_DOMAIN, separated by commas.",
                ("letsencrypt_domains",),
                example="www.example.com",
            ),
            Setting(
                "HUBSWARM_LETSENCRYPT_EMAIL",
                kinds.EMAIL,
                "The contact address the ACME server gets.",
                ("letsencrypt_email",),
                example="ops@example.com",
            ),
            Setting(
                "HUBSWARM_ACME_SERVER",
                kinds.HTTPS_URL,
                "The ACME server's directory URL.",
                ("acme_server",),
                "https://acme-v02.api.letsencrypt.org/directory",
            ),
            Setting(
                "HUBSWARM_ACME_CA_BUNDLE",
                kinds.CA_FILE,
                "A local CA file the hub must trust to reach the ACME server (test servers only).",
                ("acme_ca_bundle",),
                note="A CA file the hub must trust to reach the ACME server (test servers only).",
            ),
            Setting(
                "HUBSWARM_STATIC_DOMAIN",
                kinds.DNS,
                "Another name, on which the hub serves a static site.",
                ("static_domain",),
                example="example.com",
                note="Optional static site on another name (served from HUBSWARM_STATIC_ROOT on the hub).",
            ),
            Setting(
                "HUBSWARM_STATIC_ROOT",
                kinds.REMOTE_PATH,
                "The static site's folder on the hub.",
                ("static_root",),
                "/data/www",
            ),
        ),
    ),
    Group(
        "fab launch / fab security-groups.",
        (
            Setting(
                "HUBSWARM_AMI",
                kinds.AMI,
                "The AMI `launch` starts instances of.",
                ("ami",),
                example="ami-0123456789abcdef0",
            ),
            Setting(
                "HUBSWARM_INSTANCE_TYPE",
                kinds.INSTANCE_TYPE,
                "The instance type `launch` starts.",
                ("instance_type",),
                "t3.medium",
            ),
            Setting(
                "HUBSWARM_KEY_NAME",
                kinds.KEY_NAME,
                "The EC2 key pair of the instances `launch` starts.",
                ("key_name",),
                example="my-key",
            ),
            Setting(
                "HUBSWARM_SUBNET_ID",
                kinds.SUBNET,
                "The subnet `launch` starts instances in.",
                ("subnet_id",),
                example="subnet-0123456789abcdef0",
            ),
            Setting(
                "HUBSWARM_VPC_ID",
                kinds.VPC,
                "The cluster's VPC, for its security groups (unset: the subnet's, else the default VPC).",
                ("vpc_id",),
                example="vpc-0123456789abcdef0",
            ),
            Setting(
                "HUBSWARM_LAUNCH_TIMEOUT",
                kinds.SECONDS,
                "Seconds `launch` waits for new instances to run and answer on port 22.",
                ("launch_timeout",),
                "600",
                note="Seconds launch waits for new instances to run and answer on port 22.",
            ),
        ),
    ),
    Group(
        "Check mode, and the lab's settings (fab lab.up writes them into .lab/lab.env).",
        (
            Setting(
                "HUBSWARM_CHECK",
                kinds.FLAG,
                "Check mode: show what would change, change nothing (as `fab check ...`).",
                ("check",),
                False,
            ),
            Setting(
                "HUBSWARM_LAB",
                kinds.FLAG,
                "The lab's settings are in force (`fab lab.up` writes it; 0 ignores a running lab).",
                ("lab",),
                False,
            ),
            Setting(
                "HUBSWARM_LAB_SLOT",
                kinds.LAB_SLOT,
                "Which lab on this machine: 0 (its folder `.lab`) or 1 to 9 (`.lab-N`, its own network).",
                ("lab_slot",),
                "0",
            ),
            Setting(
                "HUBSWARM_LAB_SUBNET",
                kinds.NETWORK,
                "The lab's network: only its hosts may be targets (`fab lab.up` writes it).",
                ("lab_subnet",),
            ),
            Setting(
                "HUBSWARM_HUB_PASSWORD",
                kinds.password(8),
                "The users' shared password of the `password` authenticator (`fab lab.up` writes it).",
                secret=True,
                hub_env="HUB_USER_PASSWORD",
            ),
            Setting(
                "HUBSWARM_HUB_ADMIN_PASSWORD",
                kinds.password(32),
                "The admins' password of the `password` authenticator (`fab lab.up` writes it).",
                secret=True,
                hub_env="HUB_ADMIN_PASSWORD",
            ),
        ),
        in_env_example=False,
    ),
)

SETTINGS = tuple(setting for group in GROUPS for setting in group.settings)
SETTING = {setting.variable: setting for setting in SETTINGS}
# The settings of the ``hubswarm`` config, and those only the hub's env file holds.
CONFIG_SETTINGS = tuple(setting for setting in SETTINGS if setting.key)
HUB_ENV_SETTINGS = tuple(setting for setting in SETTINGS if setting.hub_env)
