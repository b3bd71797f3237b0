"""The reference site builds strictly, and the strictness can fail (Sphinx; `make docs`)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("sphinx")
pytest.importorskip("myst_parser")
pytest.importorskip("furo")


def build(source: Path, out: Path, builder: str = "html") -> subprocess.CompletedProcess:
    # the notebook page is shown unexecuted here: tests/test_notebook.py runs the notebook itself
    return subprocess.run([sys.executable, "-m", "sphinx", "-b", builder, "-n", "-W", "--keep-going", "-q",
                           str(source), str(out)], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "TEXTRNN_DOCS_EXECUTE": "0"})


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    proc = build(ROOT / "docs", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_every_public_name_has_a_page_and_every_config_key_a_row(site):
    import textrnn
    from textrnn.core.config import TrainConfig

    for name in textrnn.__all__:
        assert (site / "api" / f"{name}.html").is_file(), name
    page = (site / "api" / "RNNClassifier.html").read_text()
    assert "replace_head" in page and "from_tokenizer" in page and "encode" in page
    configs = (site / "api" / "configs.html").read_text()
    assert "the peak learning rate" in configs and "adamw | sgd | ntasgd" in configs and "max_minutes" in configs
    for key in TrainConfig.__dataclass_fields__:
        assert f"<code class=\"docutils literal notranslate\"><span class=\"pre\">{key}</span>" in configs, key


@pytest.mark.slow
def test_an_undocumented_public_function_or_a_broken_reference_fails_the_build(tmp_path):
    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "docs", copy / "docs", ignore=shutil.ignore_patterns("_build", "api", "results", "images"))
    shutil.copytree(ROOT / "textrnn", copy / "textrnn", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "examples", copy / "examples")  # the quickstart notebook's page
    module = copy / "textrnn" / "models" / "decoding.py"  # both planted at once: one build (--keep-going) finds both
    module.write_text(module.read_text() + "\n\ndef planted_function(x: int) -> int:\n    return x\n\n\n"
                      'def planted_reference() -> None:\n    """See :class:`NoSuchClass`."""\n')
    # Sphinx's dummy builder reads and resolves every page as html does but writes nothing (half the time)
    proc = build(copy / "docs", tmp_path / "out", builder="dummy")
    assert proc.returncode != 0
    assert "undocumented public function: textrnn.models.decoding.planted_function" in proc.stderr
    assert "reference target not found: NoSuchClass" in proc.stderr


def test_the_quickstart_notebook_is_a_page_with_what_each_cell_printed(site, monkeypatch):
    import nbformat

    monkeypatch.syspath_prepend(str(ROOT / "docs" / "_ext"))
    from textrnn_reference import render_notebook

    page = (site / "api" / "quickstart.html").read_text()
    assert "RNNClassifier" in page and "shown without running it" in page
    book = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Title"),
                                           nbformat.v4.new_code_cell("print(1 + 1)")])
    book.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="2\n"),
                             nbformat.v4.new_output("execute_result", data={"text/plain": "'done'"}, execution_count=1)]
    text = render_notebook(book, "demo.ipynb", executed=True)
    assert text.splitlines()[2:] == ["# Title", "", "```python", "print(1 + 1)", "```", "", "```text", "2", "'done'",
                                     "```"]
    assert "run when this site was built" in text


def test_every_example_in_a_public_docstring_runs(tmp_path, monkeypatch):
    import inspect
    import textwrap

    import textrnn

    examples = {}
    for name in textrnn.__all__:
        doc = inspect.getdoc(getattr(textrnn, name)) or ""
        if "Example::" in doc:  # the indented block after it, up to the end of the docstring
            examples[name] = textwrap.dedent(doc.split("Example::", 1)[1].strip("\n"))
    assert {"RNNClassifier", "RNNLanguageModel", "train"} <= set(examples)
    monkeypatch.chdir(tmp_path)  # examples save folders where they run
    for name, code in examples.items():
        exec(compile(code, f"<example of {name}>", "exec"), {})


def test_a_class_page_puts_what_a_user_calls_before_what_textrnn_calls(site):
    page = (site / "api" / "RNNClassifier.html").read_text()
    split = page.index("Used by textrnn itself")
    assert "predict" in page[:split] and "save_pretrained" in page[:split] and "Example" in page[:split]
    assert "check_head" in page[split:] and "check_head" not in page[:split]


def test_the_site_in_headless_chromium(site, tmp_path):
    """The home page, a guide and a class page open in headless Chromium (Debian's chromium package): each has
    its title, and no code block reaches past the window or hides text without a scroll bar (the home snippet
    once ran off the page). With TEXTRNN_SCREENSHOTS=DIR the screenshots are kept there (the docs' come from
    this test)."""
    from .server_harness import Browser, static_server

    if not shutil.which("chromium"):
        pytest.skip("needs headless Chromium: apt-get install -y chromium (make test installs it as root)")
    shots = Path(os.environ.get("TEXTRNN_SCREENSHOTS", tmp_path))
    pages = {"index.html": ("textrnn", "docs_home.png"), "guides.html": ("How-to guides", "docs_guide.png"),
             "api/RNNClassifier.html": ("RNNClassifier", "docs_class_page.png")}
    browser = Browser(tmp_path / "profile")
    try:
        with static_server(site) as url:
            for page, (title, shot) in pages.items():
                browser.call("Page.navigate", url=f"{url}/{page}")
                browser.wait_for("document.readyState === 'complete' && !!document.querySelector('h1')")
                assert title in browser.evaluate("document.querySelector('h1').textContent"), page
                off_page = browser.evaluate("[...document.querySelectorAll('div.highlight')].filter(b => "
                                            "b.getBoundingClientRect().right > document.documentElement.clientWidth"
                                            " + 1).length")
                clipped = browser.evaluate("[...document.querySelectorAll('div.highlight pre')].filter(p => "
                                           "p.scrollWidth > p.clientWidth && getComputedStyle(p).overflowX "
                                           "=== 'visible').length")
                assert off_page == 0 and clipped == 0, page
                browser.screenshot(shots / shot)
    finally:
        browser.close()
