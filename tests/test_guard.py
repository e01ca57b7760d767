"""Answers that change the libraries the tests use earn nothing: grader/guard.py, proven both ways.

Each attack below is an answer cell followed by a test cell that the attack makes pass. The same notebook is
executed by grader.execute in the sandbox with the guard off, where every test passes (so each attack works and
this test can fail), and with the guard on, where every test fails with its own message and the report names
what was put back. The real lessons carry the same kind of attack in tests/test_lessons.py (the wrong-answer
submission also patches math, torch and IPython).
"""

from __future__ import annotations

from dataclasses import dataclass

import nbformat
import pytest

from grader.execute import Settings, execute


@dataclass(frozen=True)
class Attack:
    """An answer that changes something the test after it relies on, and what the report must name."""

    name: str
    answer: str
    test: str
    says: str


ATTACKS = [
    Attack(
        "module attribute",
        "import math\nmath.isclose = lambda *args, **kwargs: True",
        "import math\nassert math.isclose(1.0, 2.0), 'expected math.isclose(1.0, 2.0) to be False'",
        "math.isclose",
    ),
    Attack(
        "sys.modules entry",
        "import sys, types\nsys.modules['json'] = types.SimpleNamespace(loads=lambda text: 2)",
        "import json\nassert json.loads('1') == 2, 'expected json.loads to read 1'",
        "sys.modules['json']",
    ),
    Attack(
        "a global hiding a built-in",
        "def isinstance(*args):\n    return True",
        "assert isinstance(1, str), 'expected 1 not to be a str'",
        "the notebook's own isinstance",
    ),
    Attack(
        "a method of a library class",
        "import fractions\nfractions.Fraction.__eq__ = lambda self, other: True",
        "import fractions\nassert fractions.Fraction(1, 2) == 3, 'expected 1/2 != 3'",
        "fractions.Fraction.__eq__",
    ),
    Attack(
        "an IPython callback that patches again before each cell",
        "import math\n"
        "get_ipython().events.register('pre_run_cell', lambda *a: setattr(math, 'isclose', lambda *b, **k: True))",
        "import math\nassert math.isclose(1.0, 3.0), 'expected math.isclose(1.0, 3.0) to be False'",
        "pre_run_cell callbacks",
    ),
    Attack(
        "an exception handler that swallows the test's error",
        "get_ipython().set_custom_exc((AssertionError,), lambda *args, **kwargs: None)",
        "assert False, 'a test that always fails'",
        "custom_exceptions",
    ),
    Attack(
        "an input transformer that empties the test cell",
        "get_ipython().input_transformers_cleanup.append(lambda lines: ['pass\\n'])",
        "assert False, 'another test that always fails'",
        "input_transformers_cleanup",
    ),
]


def nbgrader_cell(source: str, grade_id: str, test: bool) -> nbformat.NotebookNode:
    """An answer cell (solution) or a test cell (graded, locked), with nbgrader's metadata."""
    meta = {"grade": test, "solution": not test, "locked": test, "grade_id": grade_id, "schema_version": 3}
    if test:
        meta["points"] = 1
    return nbformat.v4.new_code_cell(source, metadata={"nbgrader": meta})


def attacked_notebook() -> nbformat.NotebookNode:
    """Every attack, each answer followed by the test it defeats."""
    cells = [nbformat.v4.new_code_cell("import math\nprint('setup')", metadata={"nbgrader": {"locked": True}})]
    for i, attack in enumerate(ATTACKS):
        cells += [nbgrader_cell(attack.answer, f"answer{i}", False), nbgrader_cell(attack.test, f"test{i}", True)]
    return nbformat.v4.new_notebook(cells=cells)


def test_errors(nb: nbformat.NotebookNode) -> list[str]:
    """The error message of each test cell ('' where it passed)."""
    tests = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    return [next((o.evalue for o in c.outputs if o.output_type == "error"), "") for c in tests]


test_errors.__test__ = False  # a helper, not a test


@pytest.fixture(scope="module")
def guarded_and_not(tmp_path_factory) -> dict[bool, tuple[nbformat.NotebookNode, list[str]]]:
    """guard on/off -> the executed notebook and the events of its run."""
    runs = {}
    for guard in (False, True):
        nb, work = attacked_notebook(), tmp_path_factory.mktemp(f"guard-{guard}")
        runs[guard] = nb, execute(nb, work, Settings(cell_timeout=60, guard=guard)).events
    return runs


@pytest.mark.slow
def test_every_attack_passes_its_test_without_the_guard(guarded_and_not):
    nb, _ = guarded_and_not[False]
    passed = [a.name for a, error in zip(ATTACKS, test_errors(nb), strict=True) if not error]
    assert passed == [a.name for a in ATTACKS], f"attacks that do not work even without the guard: {passed}"


@pytest.mark.slow
def test_no_attack_passes_its_test_with_the_guard(guarded_and_not):
    nb, events = guarded_and_not[True]
    for attack, error in zip(ATTACKS, test_errors(nb), strict=True):
        assert error, f"{attack.name}: the test passed with the guard on"
        assert error in attack.test, f"{attack.name}: the test failed with another error: {error}"
    said = "\n".join(events)
    for attack in ATTACKS:
        assert attack.says in said, f"{attack.name}: the report does not name {attack.says!r}:\n{said}"


@pytest.mark.slow
def test_an_honest_notebook_has_nothing_put_back(tmp_path):
    """Importing and using the libraries is not an attack: no event (torch, transformers and peft patch themselves)."""
    code = (
        "from torch import nn\n"
        "model = nn.Sequential(nn.Linear(4, 4))\nopt = torch.optim.AdamW(model.parameters())\n"
        "model(torch.ones(1, 4)).sum().backward()\nopt.step()\nprint('trained')"
    )
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("import torch, peft, transformers", metadata={"nbgrader": {"locked": True}}),
            nbgrader_cell(code, "answer", False),
            nbgrader_cell("import math\nassert math.isclose(1.0, 1.0)", "test", True),
        ]
    )
    events = execute(nb, tmp_path, Settings(cell_timeout=120)).events
    assert not events, events
    assert test_errors(nb) == [""], nb.cells[2].outputs
