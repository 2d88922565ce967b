"""The hub backs its state up by itself into the shared storage: the newest kept, listed by
fab backup --list, shown by fab status, and restored by fab restore with no archive named."""

import time

from fabrun import fab

FOLDER = "/mnt/nfs/home/.hubswarm-backups"


def stored(env):
    listed = fab("backup", "--list", env=env)
    assert listed.code == 0, listed.output
    return [line.split()[0] for line in listed.output.splitlines() if line.startswith("hubswarm-")]


def test_the_hub_backs_itself_up_into_the_shared_storage(lab, deploy_run, connect):
    every_two_seconds = {"HUBSWARM_BACKUP_EVERY": "2", "HUBSWARM_BACKUP_KEEP": "2"}
    try:
        run = fab("setup-hub", env=every_two_seconds)
        assert run.code == 0, run.output
        assert f"[{lab.hub_ip}] backups: back up every 2 s from now" in run.output
        seen, deadline = set(), time.monotonic() + 60
        while len(seen) < 3 or len(names := stored(every_two_seconds)) != 2:  # three taken, two kept
            seen |= set(stored(every_two_seconds))
            assert time.monotonic() < deadline, f"the hub took {sorted(seen)} in 60 s"
        seen |= set(names)  # (the hub may have taken one more since the loop's last look)
        assert sorted(seen)[0] not in names  # the oldest went
        modes = connect(lab.hub_ip).sudo(f"stat -c '%a %U' {FOLDER} {FOLDER}/{names[-1]}", hide=True).stdout
        assert modes.split("\n")[:2] == ["700 root", "600 root"]
    finally:
        again = fab("setup-hub")  # every hour, as the lab's other tests expect
        assert again.code == 0, again.output

    status = fab("status")
    [row] = [line for line in status.output.splitlines() if line.startswith("backup ")]
    assert row.split()[3:5] == ["0m", "old"], row
    assert "backup shared storage:" not in status.output  # no problem with it

    predicted = fab("check", "restore")  # the newest, read from the shared storage; nothing changed
    assert predicted.code == 0, predicted.output
    newest = stored({})[-1]
    assert f"read {newest}, the newest backup in the shared storage" in predicted.output
