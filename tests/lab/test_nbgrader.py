"""Assignments with nbgrader on a real hub (HUBSWARM_COURSE_ID), through nbgrader's own commands in
users' servers: an instructor makes an assignment and releases it, two students fetch it, one
solves it and submits, the other submits it unchanged; the instructor collects and autogrades,
and the gradebook holds the scores due. Neither student reads the other's submission nor the
instructor's source, and each role's server shows nbgrader's parts for that role only."""

import ast
import json
import re

import pytest
import requests
from test_course import class_of_three, hub_shell
from test_homes import HOMES

from tasks.hubswarm_hub import nbgrader

COURSE_ID = "demo101"
ROOT = nbgrader.course_root(COURSE_ID)
INBOUND = f"{nbgrader.EXCHANGE_IN_SERVER}/{COURSE_ID}/inbound"
# nbgrader's commands, autograde's kernels among them, take their time on a busy lab.
NBGRADER_SECONDS = 600
# In the instructor's kernel: the assignment's source, one answer to write and one graded test.
SOURCE = f"""
import os
import nbformat
from nbformat.v4 import new_code_cell, new_notebook

def cell(source, grade_id, **nbgrader):
    meta = {{"grade_id": grade_id, "locked": False, "schema_version": 3, "solution": False, "grade": False, "task": False}}
    return new_code_cell(source, metadata={{"nbgrader": {{**meta, **nbgrader}}}})

answer = cell("def double(x):\\n    ### BEGIN SOLUTION\\n    return 2 * x\\n    ### END SOLUTION", "answer", solution=True)
tests = cell("assert double(2) == 4\\nassert double(-3) == -6", "tests", grade=True, locked=True, points=1)
kernel = {{"name": "python3", "display_name": "Python 3", "language": "python"}}
os.makedirs("{ROOT}/source/ps1", exist_ok=True)
nbformat.write(new_notebook(cells=[answer, tests], metadata={{"kernelspec": kernel}}), "{ROOT}/source/ps1/ps1.ipynb")
"""
# In a student's kernel: the fetched answer cell made right (nbgrader left its stub there).
SOLVE = """
import nbformat
nb = nbformat.read("ps1/ps1.ipynb", as_version=4)
nb.cells[0].source = nb.cells[0].source.replace("raise NotImplementedError()", "return 2 * x")
nbformat.write(nb, "ps1/ps1.ipynb")
"""
SCORES = """
from nbgrader.api import Gradebook
with Gradebook("sqlite:///{root}/gradebook.db", "{course}") as gradebook:
    print(repr({{name: gradebook.find_submission("ps1", name).score for name in {names!r}}}))
"""


def nbgrader_command(member, *args, cwd="~"):
    """(exit code, what it printed) of ``nbgrader ARGS`` run in ``member``'s kernel, in ``cwd``."""
    code = (
        "import os, subprocess\n"
        f"done = subprocess.run(['nbgrader', *{list(args)!r}], cwd=os.path.expanduser({cwd!r}), "
        "capture_output=True, text=True)\n"
        "print(repr((done.returncode, done.stdout + done.stderr)))"
    )
    return ast.literal_eval(member.student.execute(member.kernel, code, seconds=NBGRADER_SECONDS))


def nbgrader_ok(member, *args, cwd="~"):
    code, printed = nbgrader_command(member, *args, cwd=cwd)
    assert code == 0, f"{member.name}: nbgrader {' '.join(args)}:\n{printed}"


def run_code(member, code):
    return member.student.execute(member.kernel, code, seconds=NBGRADER_SECONDS)


@pytest.fixture(scope="module")
def course(lab, deploy_run, lab_users, tmp_path_factory):
    """(teacher, solver, idler): the lab's admin is an instructor and the hub hands out COURSE_ID's
    assignments; the students are in no group."""
    leftovers = [
        f"{HOMES}/.nbgrader/exchange/{COURSE_ID}/*",
        f"{HOMES}/.shared/instructors/{COURSE_ID}",
        f"{HOMES}/*/ps1",
        f"{HOMES}/*/.local/share/jupyter/nbgrader_cache",
    ]
    steps = ("userlist", "hub-config", "start-hub")  # (the course id reaches the spawner by hub-config)
    folder = tmp_path_factory.mktemp("nbgrader")
    with class_of_three(
        lab, lab_users, folder, ("instructor", "", ""), leftovers, steps, env={"HUBSWARM_COURSE_ID": COURSE_ID}
    ) as (_, members):
        yield members


@pytest.fixture(scope="module")
def graded(course):
    """The gradebook's scores of ps1 ({student: score}) once it went out, came back and was
    autograded, through nbgrader's own commands in the users' servers."""
    teacher, solver, idler = course
    run_code(teacher, SOURCE)
    nbgrader_ok(teacher, "generate_assignment", "ps1", "--force", cwd=ROOT)
    nbgrader_ok(teacher, "release_assignment", "ps1", "--force", cwd=ROOT)
    for student in (solver, idler):
        nbgrader_ok(student, "fetch_assignment", "ps1")
    run_code(solver, SOLVE)
    for student in (solver, idler):
        nbgrader_ok(student, "submit", "ps1")
    nbgrader_ok(teacher, "collect", "ps1", cwd=ROOT)
    nbgrader_ok(teacher, "autograde", "ps1", cwd=ROOT)
    return ast.literal_eval(
        run_code(teacher, SCORES.format(root=ROOT, course=COURSE_ID, names=[solver.name, idler.name]))
    )


def test_the_solved_assignment_scores_its_point_the_unchanged_one_none(course, graded, lab, connect):
    _, solver, idler = course
    assert graded == {solver.name: 1.0, idler.name: 0.0}
    # What the students fetched held no solution; the course directory is the instructors' group's.
    fetched = idler.attempt("read", "~/ps1/ps1.ipynb")
    assert "raise NotImplementedError()" in fetched and "return 2 * x" not in fetched
    assert hub_shell(connect, lab, f"stat -c %a {HOMES}/.shared/instructors/{COURSE_ID}") == "2770"


def test_a_student_reads_neither_anothers_submission_nor_the_source(course, graded):
    teacher, solver, idler = course
    outbound = f"{nbgrader.EXCHANGE_IN_SERVER}/{COURSE_ID}/outbound/ps1"
    assert teacher.attempt("read", f"{ROOT}/source/ps1/ps1.ipynb").startswith("{")
    # Instructors list the submissions (named "USER+ASSIGNMENT+TIME+RANDOM"; the time has spaces).
    assert teacher.attempt("list", INBOUND).count("+ps1+") == 2
    for student in (solver, idler):
        assert student.attempt("list", INBOUND) == "EACCES"  # so no other's submission to name there
        assert student.attempt("list", "~/shared/instructors") == "ENOENT"  # not in the server at all
        assert student.attempt("read", f"{ROOT}/source/ps1/ps1.ipynb") == "ENOENT"
        assert student.attempt("list", outbound) == "ps1.ipynb"
        assert student.attempt("write", f"{outbound}/ps1.ipynb", "mine") == "EACCES"
        assert student.attempt("mount", nbgrader.CONFIG_IN_SERVER) == "read-only"


def page_config(member):
    """The JupyterLab page's settings, as the user's browser gets them."""
    student = member.student
    page = requests.get(
        f"{student.server_url}/user/{student.name}/lab",
        headers={"Authorization": f"token {student.token}"},
        timeout=30,
        verify=False,
    )
    assert page.status_code == 200, page.status_code
    return json.loads(re.search(r'id="jupyter-config-data"[^>]*>(.*?)</script>', page.text, re.S)[1])


def formgrader_status(member):
    """What the user's server answers for formgrader's first page."""
    student = member.student
    return requests.get(
        f"{student.server_url}/user/{student.name}/formgrader/manage_assignments",
        headers={"Authorization": f"token {student.token}"},
        timeout=30,
        verify=False,
        allow_redirects=False,
    ).status_code


def test_formgrader_and_create_assignment_are_the_instructors_only(course):
    teacher, solver, _ = course
    instructor_only = {f"@jupyter/nbgrader:{name}" for name in ("formgrader", "create-assignment", "course-list")}
    every = set(nbgrader.LAB_PLUGINS)
    assert every & set(page_config(teacher)["disabledExtensions"]) == set()
    assert every & set(page_config(solver)["disabledExtensions"]) == instructor_only
    assert formgrader_status(teacher) == 200
    assert formgrader_status(solver) == 404
