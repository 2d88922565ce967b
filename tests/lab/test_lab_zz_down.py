"""lab destroy: runs after every other test of the session (marker lab_teardown, see conftest).

It removes the whole lab and checks nothing labelled as this lab is left: the next run
starts from a lab made fresh (its images and download caches are kept), with no host to make again.
"""

import pytest

from tasks import lab as lab_module
from tasks.lab.docker import LAB_LABEL, docker


@pytest.mark.lab_teardown
def test_destroy_leaves_nothing_labelled(lab):
    lab_module.destroy()
    for kind in ("container", "network", "volume"):
        listing = ["--all"] if kind == "container" else []
        assert docker(kind, "ls", *listing, "--quiet", "--filter", f"label={LAB_LABEL}") == "", kind
    assert not lab.known_hosts_path.exists()
