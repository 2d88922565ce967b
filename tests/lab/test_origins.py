"""Students are not trusted: each user's server answers on a name of its own under the hub's
(https://NAME.hub.lab.example), so a script a student's server serves never runs on the hub's
origin, and cannot act as whoever opens it.

Proved by the attack: the teacher, logged in, opens a page the student's server serves, whose
script tries to make an API token in the teacher's name (reading the XSRF token off the hub's own
page, then asking the hub's API with the teacher's cookies). With one
origin for all (HUBSWARM_SINGLE_ORIGIN=1, as the lab runs by default: its hosts are reached by
address) the same script gets its token, so the test tests something.
"""

import socket

import pytest

from fabrun import fab
from student import Student
from tasks.lab import LAB_DOMAIN

SUBDOMAINS = {"HUBSWARM_DOMAIN": LAB_DOMAIN, "HUBSWARM_SINGLE_ORIGIN": "0"}

# What a student's page runs in the browser of whoever opens it.
ATTACK = """async ([hub, victim]) => {
  let xsrf = '';
  try {  // the hub's own page names the XSRF token its API wants with the cookies
    const home = await (await fetch(hub + '/hub/home', {credentials: 'include'})).text();
    xsrf = (home.match(/xsrf_token: "([^"]+)"/) || ['', ''])[1];
  } catch (error) {}  // another origin's page: not readable
  try {
    const reply = await fetch(hub + '/hub/api/users/' + victim + '/tokens', {
      method: 'POST', credentials: 'include',
      headers: {'Content-Type': 'application/json', ...(xsrf ? {'X-XSRFToken': xsrf} : {})},
      body: JSON.stringify({note: 'taken by a student'}),
    });
    return String(reply.status);
  } catch (error) {
    return 'refused by the browser';
  }
}"""


@pytest.fixture
def lab_names(lab, monkeypatch):
    """This machine resolves the hub's lab name and every name under it to the hub, as the
    lab's own DNS answers its hosts."""
    resolve = socket.getaddrinfo

    def lab_resolve(host, *args, **kwargs):
        if host == LAB_DOMAIN or str(host).endswith("." + LAB_DOMAIN):
            host = lab.hub_ip
        return resolve(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", lab_resolve)


def stolen_tokens(admin):
    tokens = admin.hub_api("GET", f"users/{admin.name}/tokens").json()["api_tokens"]
    return [token["id"] for token in tokens if token["note"] == "taken by a student"]


def attack(browser, hub, server, teacher, password):
    """The teacher logs in at ``hub`` and opens the student's ``server`` page: what its script got."""
    context = browser.new_context(ignore_https_errors=True)
    try:
        page = context.new_page()
        page.goto(f"{hub}/hub/login?next=/hub/home")  # (not the teacher's own server)
        page.fill("#username_input", teacher)
        page.fill("#password_input", password)
        page.click("#login_submit")
        page.wait_for_url(f"{hub}/hub/home")
        page.goto(server)  # (a page of the student's server anyone gets: its "not found")
        return page.evaluate(ATTACK, [hub, teacher])
    finally:
        context.close()


def test_a_students_page_cannot_act_as_the_teacher_who_opens_it(lab, deploy_run, lab_users, lab_names, browser):
    student = Student(lab.hub_ip, lab_users.student, lab_users.password)
    student.start_server()
    kernel = student.start_kernel()
    student.execute(kernel, "x = 41")
    teacher = Student(lab.hub_ip, lab_users.admin, lab_users.admin_password)

    one_origin = attack(
        browser,
        f"https://{lab.hub_ip}",
        f"https://{lab.hub_ip}/user/{student.name}/page",
        teacher.name,
        lab_users.admin_password,
    )
    taken = stolen_tokens(teacher)
    for token in taken:
        teacher.hub_api("DELETE", f"users/{teacher.name}/tokens/{token}")
    assert (one_origin, len(taken)) == ("201", 1)  # on one origin, the student's script is the teacher

    try:
        run = fab("setup-hub", "start-hub", env=SUBDOMAINS)
        assert run.code == 0, run.output
        assert f"make a self-signed certificate for {LAB_DOMAIN} and *.{LAB_DOMAIN}" in run.output
        assert "restart jupyterhub-proxy (its inputs changed)" in run.output  # now routing on the name
        again = Student(LAB_DOMAIN, student.name, lab_users.password, subdomains=True)
        assert again.execute(kernel, "print(x + 1)") == "42"  # the server started before, at its new name
        assert again.server_api("GET", "status").status_code == 200
        assert Student(LAB_DOMAIN, student.name, lab_users.password).server_api("GET", "status").status_code != 200

        own_names = attack(
            browser,
            f"https://{LAB_DOMAIN}",
            f"https://{student.name}.{LAB_DOMAIN}/user/{student.name}/page",
            teacher.name,
            lab_users.admin_password,
        )
        assert own_names in ("refused by the browser", "403"), own_names
        assert stolen_tokens(teacher) == []
    finally:
        back = fab("setup-hub", "start-hub")
        assert back.code == 0, back.output
