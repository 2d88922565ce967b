"""lab destroy: runs after every other test of the session (marker lab_teardown, see conftest).

It removes the whole lab, checks nothing labelled hubswarm.lab=1 is left, then brings the lab
back up so that the lab stays usable after the test run (the images are cached: ~5 s).
"""

import pytest

from tasks import lab as lab_module
from tasks.lab.docker import LAB_LABEL, docker


@pytest.mark.lab_teardown
def test_destroy_leaves_nothing_labelled_then_lab_comes_back(lab):
    lab_module.destroy()
    for kind in ("container", "network", "volume"):
        listing = ["--all"] if kind == "container" else []
        assert docker(kind, "ls", *listing, "--quiet", "--filter", f"label={LAB_LABEL}") == "", kind
    assert not lab.known_hosts_path.exists()

    again = lab_module.ensure_lab(workers=2)
    assert again.hosts == lab.hosts
