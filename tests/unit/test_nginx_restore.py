"""A site that fails `nginx -t` never stays: the reload script, run in real bash."""

import os
import subprocess

import pytest

from tasks.hub import nginx


def run_reload(tmp_path, nginx_ok, site_changed, site_existed):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nginx").write_text(
        "#!/bin/sh\n" + ("exit 0\n" if nginx_ok else "echo 'nginx: [emerg] unknown directive \"x\"' >&2; exit 1\n")
    )
    (bin_dir / "systemctl").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/systemctl.log\n')
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    site, link, previous = tmp_path / "site", tmp_path / "link", tmp_path / "site.hubswarm-previous"
    site.write_text("new\n")
    link.symlink_to(site)
    if site_existed:
        previous.write_text("old\n")
    script = nginx.reload_script(str(site), str(link), str(previous), site_changed, site_existed)
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin"}
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env)
    return result, site, link, previous


def test_failed_test_puts_the_previous_site_back(tmp_path):
    result, site, link, previous = run_reload(tmp_path, nginx_ok=False, site_changed=True, site_existed=True)
    assert result.returncode == 1
    assert site.read_text() == "old\n" and not previous.exists() and link.exists()
    assert result.stderr.strip().splitlines()[-1] == (
        'nginx -t failed, previous site restored: nginx: [emerg] unknown directive "x"'
    )
    assert not (tmp_path / "systemctl.log").exists()


def test_failed_test_removes_a_new_site_and_its_link(tmp_path):
    result, site, link, _ = run_reload(tmp_path, nginx_ok=False, site_changed=True, site_existed=False)
    assert result.returncode == 1 and "new site removed" in result.stderr
    assert not site.exists() and not os.path.lexists(link)


def test_failed_test_without_a_site_change_touches_nothing(tmp_path):
    result, site, _, _ = run_reload(tmp_path, nginx_ok=False, site_changed=False, site_existed=True)
    assert result.returncode == 1 and site.read_text() == "new\n"


@pytest.mark.parametrize("site_existed", [True, False])
def test_passing_test_reloads_and_drops_the_copy(tmp_path, site_existed):
    result, site, _, previous = run_reload(tmp_path, nginx_ok=True, site_changed=True, site_existed=site_existed)
    assert result.returncode == 0, result.stderr
    assert site.read_text() == "new\n" and not previous.exists()
    assert "reload nginx" in (tmp_path / "systemctl.log").read_text()
