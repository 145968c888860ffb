"""The README's code example runs and prints what it says."""

import contextlib
import io
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_readme_python_example_runs():
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    (example,) = re.findall(r"```python\n(.*?)```", readme, re.S)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(example, "README.md", "exec"), {})
    assert printed.getvalue().split() == ["392.0"]


def test_readme_quick_start_has_exactly_the_two_commands():
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```bash\n(.*?)```", quick_start, re.S)
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.split("#")[0].strip()]
    assert commands == ["tools/quickstart.sh", "tools/test.sh"]
    ci = open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8").read()
    assert "bash tools/test.sh" in ci
