"""docs/tutorial.md runs as written, and prints what its comments say it prints."""

import contextlib
import io
import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_tutorial_runs_and_prints_the_shapes_it_claims(tmp_path):
    text = (ROOT / "docs" / "tutorial.md").read_text()
    code = "\n".join(re.findall(r"```python\n(.*?)```", text, flags=re.S))
    assert 30 <= len([line for line in code.splitlines() if line.strip()]) <= 45
    out = io.StringIO()
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(code, "tutorial.md", "exec"), {})
    finally:
        os.chdir(cwd)
    lines = out.getvalue().splitlines()
    assert lines[0] == "torch.Size([4, 8]) [5, 1, 8, 2]"
    assert lines[1] == "torch.Size([16, 16]) [4, 3, 2, 2, 2, 1, 1, 1]"
    assert lines[2] == "torch.Size([4, 8, 64])"
    assert lines[3] == "torch.Size([4, 4, 32]) torch.Size([4, 4, 32])"
    assert lines[4] == "0.0"
    loss, label = lines[5].split()
    assert float(loss) < 0.2 and label == "positive"
    assert {p.name for p in (tmp_path / "tutorial_model").iterdir()} == {"config.json", "model.safetensors",
                                                                          "tokenizer.json", "README.md"}
