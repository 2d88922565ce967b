# JupyterHub's configuration, written by hubswarm (hub-config); edits here are overwritten.
# The settings, and why, are hubswarm_hub.config's (hubswarm's hub-side package in this venv);
# the values hubswarm chose for this hub are in hubswarm.json beside this file.
import glob
import json
import os

from hubswarm_hub.config import apply, refuse_unfenced

c = get_config()  # noqa: F821 (provided by JupyterHub)

# This file's folder: hubswarm's state folder on the hub.
HERE = os.path.dirname(os.path.abspath(__file__))

with open(os.path.join(HERE, "hubswarm.json"), encoding="utf-8") as values:
    apply(c, json.load(values))

# The operator's own settings (jupyterhub_config.d/*.py), loaded last: load_subconfig
# exists in a config file only.
for path in sorted(glob.glob(os.path.join(HERE, "jupyterhub_config.d", "*.py"))):
    load_subconfig(path)  # noqa: F821 (provided by traitlets)

# Whatever they set, notebooks stay inside the notebook fence.
refuse_unfenced(c)
