"""Every ```python and ```bash block of README.md and docs/*.md runs here, so the docs cannot go stale.

How a page is run: each page gets a fresh working folder (with links to the repository's
``scripts/``, ``configs/``, ``benchmarks/``, ``docs/`` and the three packages, so commands run as written from the
repository root, while what they write lands in the temporary folder). Its blocks run in page
order: ``bash`` blocks with ``bash -euo pipefail``, ``python`` blocks one after another in one
interpreter session per page (a later block may use the names of an earlier one). ``python``,
``accelerate`` and ``pytest`` on the PATH are this interpreter's. ``HF_HOME`` is a temporary folder
shared by the pages of one test session (datasets prepared once), the Hub is offline, and
``OMP_NUM_THREADS=1`` (the tensors are tiny; more threads only spin against the other tests).

What makes a block tiny, or skips it, is written in the page itself, in an HTML comment right
before the fence (invisible on GitHub and the Hub), one directive a line::

    <!-- test:
    append --num_examples 60 --model_name_or_path vit-micro --max_train_steps 2
    sub load_dataset("raw") => load_dataset("raw", num_examples=20)
    -->

* ``sub OLD => NEW``: replace text in the block before it runs (OLD must occur in the block).
* ``append [NAME.py] OPTIONS``: add OPTIONS to every command of the block that runs a ``.py`` file
  from ``scripts/`` or ``benchmarks/`` (only those named NAME.py, if given first); continuation
  lines are joined first.
* ``env NAME=VALUE ...``: environment of this block (bash and python).
* ``fixture NAME``: files the block needs, made in the working folder first: ``raw-microscopy``
  and ``raw-drone`` (miniature copies of the real data's published layout under ``data/``, written
  by ``tests/raw_layouts.py``).
* ``serve``: the bash block starts a server; it passes when ``http://127.0.0.1:$GRADIO_SERVER_PORT/``
  answers (the port is a free one, set for the block), and the server is then stopped.
* Always: ``accelerate launch scripts/...`` with no launcher options runs as ``python scripts/...``
  (accelerate's default launch is that one process; this saves an interpreter start per command);
  launches with options (``--multi_gpu --num_processes 2``) run as written.
* ``timeout SECONDS``: the block's limit (default 600; a page has 1800).
* ``skip REASON``: not run; REASON must be one of :data:`SKIP_REASONS` (a GPU, the network, or the
  README's two top commands, which are the main job and this test suite).

Fenced blocks in other languages must be tagged ``text``, ``json`` or ``yaml``; an untagged fence
fails the lint test, so a command cannot slip past as plain text. ``docs/results.md`` names the
commands behind its figures inline: they are the measurements themselves (an hour or more each).

Run directly, ``python tests/test_docs.py PAGE WORKDIR`` runs one page's blocks in WORKDIR (the
test below does that in a subprocess).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import traceback
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN_LANGS = ("python", "bash")
OTHER_LANGS = ("text", "json", "yaml")
SKIP_REASONS = {
    "gpu": "needs a CUDA device",
    "network": "needs the network (the Hub or Zenodo)",
    "main-job": "the README's top commands: the main job and the test suite itself",
}
DIRECTIVES = ("sub", "append", "env", "fixture", "serve", "timeout", "skip")
FIXTURES = ("raw-microscopy", "raw-drone")
LINKED = ("scripts", "configs", "benchmarks", "docs", "raw_isp", "raw_microscopy", "raw_drone")
DEFAULT_TIMEOUT = 600
PAGE_TIMEOUT = 1800


def pages() -> list[str]:
    return ["README.md", *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md"))]


@dataclass
class Block:
    page: str
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    directives: list[tuple[str, str]] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    def get(self, name: str) -> list[str]:
        return [value for key, value in self.directives if key == name]


_FENCE = re.compile(r"^(\s*)```(\S*)\s*$")
_COMMENT_START = "<!-- test:"


def parse_directives(text: str, where: str) -> list[tuple[str, str]]:
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        name, _, value = line.partition(" ")
        if name not in DIRECTIVES:
            raise ValueError(f"{where}: unknown test directive {name!r} (known: {', '.join(DIRECTIVES)})")
        value = value.strip()
        if name == "skip" and value.split(" ")[0] not in SKIP_REASONS:
            raise ValueError(f"{where}: skip needs a reason among {sorted(SKIP_REASONS)}, got {value!r}")
        if name == "sub" and " => " not in value:
            raise ValueError(f"{where}: sub needs 'OLD => NEW', got {value!r}")
        if name == "fixture" and value not in FIXTURES:
            raise ValueError(f"{where}: unknown fixture {value!r} (known: {', '.join(FIXTURES)})")
        if name == "timeout" and not value.isdigit():
            raise ValueError(f"{where}: timeout needs whole seconds, got {value!r}")
        out.append((name, value))
    return out


def parse_page(page: str, text: str | None = None) -> list[Block]:
    """The fenced blocks of ``page`` with the directives of the ``<!-- test: ... -->`` comment
    right before each (only blank lines may stand between)."""
    lines = (ROOT / page).read_text(encoding="utf-8").splitlines() if text is None else text.splitlines()
    blocks: list[Block] = []
    pending: tuple[int, list[tuple[str, str]]] | None = None  # (line of the comment's end, directives)
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if stripped.startswith(_COMMENT_START):
            start = i
            body = [stripped[len(_COMMENT_START):]]
            while "-->" not in body[-1]:
                i += 1
                if i == len(lines):
                    raise ValueError(f"{page}:{start + 1}: unclosed test comment")
                body.append(lines[i].strip())
            body[-1] = body[-1][:body[-1].index("-->")]
            pending = (i, parse_directives("\n".join(body), f"{page}:{start + 1}"))
            i += 1
            continue
        match = _FENCE.match(line)
        if match:
            indent, lang = match.group(1), match.group(2)
            start = i
            code = []
            i += 1
            while i < len(lines) and lines[i].strip() != "```":
                code.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i])
                i += 1
            if i == len(lines):
                raise ValueError(f"{page}:{start + 1}: unclosed code fence")
            directives = []
            if pending is not None and all(not lines[k].strip() for k in range(pending[0] + 1, start)):
                directives = pending[1]
            elif pending is not None:
                raise ValueError(f"{page}:{pending[0] + 1}: a test comment must stand right before a code fence")
            pending = None
            blocks.append(Block(page, start + 1, lang, "\n".join(code) + "\n", directives))
        elif stripped and pending is not None and pending[0] != i:
            raise ValueError(f"{page}:{pending[0] + 1}: a test comment must stand right before a code fence")
        i += 1
    return blocks


def _append_options(code: str, value: str) -> str:
    first, _, rest = value.partition(" ")
    target, options = (first, rest) if first.endswith(".py") else (None, value)
    logical, current = [], ""
    for line in code.splitlines():
        piece = line.lstrip() if current else line
        if line.rstrip().endswith("\\"):
            current += piece.rstrip()[:-1].rstrip() + " "
            continue
        logical.append(current + piece)
        current = ""
    if current:
        logical.append(current)
    script = re.compile(r"(^|\s)(scripts|benchmarks)/\S+\.py(?=\s|$|;)")
    out = []
    for line in logical:
        match = script.search(line)
        if match and not line.lstrip().startswith("#") and (target is None or f"/{target}" in line):
            # The options go at the end of the script's own arguments: before a shell operator,
            # a redirection or a comment that follows them.
            rest = line[match.end():]
            stop = re.search(r"\s*(;|\|\||&&|\||[0-9]?>|  #)", rest)
            cut = match.end() + (stop.start() if stop else len(rest.rstrip()))
            line = f"{line[:cut]} {options}{line[cut:]}"
        out.append(line)
    return "\n".join(out) + "\n"


def prepared_code(block: Block) -> str:
    """The block's code after its ``sub`` and ``append`` directives."""
    code = block.code
    for value in block.get("sub"):
        old, new = value.split(" => ", 1)
        if old not in code:
            raise ValueError(f"{block.where}: sub: {old!r} does not occur in the block")
        code = code.replace(old, new)
    for value in block.get("append"):
        code = _append_options(code, value)
    # A single-process `accelerate launch` (no launcher options) runs the script as plain python:
    # the same one process, one interpreter start less.
    return re.sub(r"(^|\s)accelerate launch (?=(scripts|benchmarks)/)", r"\1python ", code, flags=re.M)


# ---------------------------------------------------------------- running one page (subprocess)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _make_fixture(name: str, work: Path) -> None:
    import raw_layouts  # tests/ is this script's folder, so it is on the import path

    if name == "raw-microscopy" and not (work / "data" / "raw-microscopy").exists():
        raw_layouts.write_microscopy(work / "data" / "raw-microscopy", num_cells=18)
    if name == "raw-drone" and not (work / "data" / "raw-drone").exists():
        raw_layouts.write_drone_frames(work / "data" / "raw-drone", num_frames=4, ratios=raw_layouts.RATIOS)


def _serve(code: str, env: dict, work: Path, timeout: int) -> None:
    port = env["GRADIO_SERVER_PORT"]
    proc = subprocess.Popen(["bash", "-euo", "pipefail", "-c", code], cwd=work, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited with status {proc.returncode} before answering")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                time.sleep(1)
        raise RuntimeError(f"no answer on port {port} within {timeout} s")
    finally:
        if proc.poll() is None:
            _stop_group(proc)


def _stop_group(proc: subprocess.Popen) -> None:
    """End the block's process group (its commands and anything they started, e.g. loader workers)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _run_bash(code: str, env: dict, work: Path, timeout: int) -> None:
    """Run a bash block in its own process group; on failure or timeout nothing of it is left running."""
    proc = subprocess.Popen(["bash", "-euo", "pipefail", "-c", code], cwd=work, env=env, start_new_session=True)
    try:
        rc = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        _stop_group(proc)
        raise RuntimeError(f"the block ran past its {timeout} s limit (timeout directive)") from None
    _stop_group(proc)  # a command that left something running in the background
    if rc:
        raise RuntimeError(f"bash exited with status {rc}")


def run_page(page: str, work: Path) -> int:
    """Run every block of ``page`` in ``work``; print what ran; 1 at the first failure."""
    work = Path(work).resolve()
    for name in LINKED:
        link = work / name
        if not link.exists():
            link.symlink_to(ROOT / name)
    os.chdir(work)
    namespace: dict = {"__name__": "__main__"}
    for block in parse_page(page):
        if block.lang not in RUN_LANGS:
            continue
        skip = block.get("skip")
        if skip:
            print(f"--- {block.where} skipped: {SKIP_REASONS[skip[0].split(' ')[0]]}", flush=True)
            continue
        code = prepared_code(block)
        timeout = int((block.get("timeout") or [DEFAULT_TIMEOUT])[-1])
        env = dict(os.environ)
        for assignment in " ".join(block.get("env")).split():
            key, _, value = assignment.partition("=")
            env[key] = value
        if block.get("serve"):
            env["GRADIO_SERVER_PORT"] = str(_free_port())
        for fixture in block.get("fixture"):
            _make_fixture(fixture, work)
        print(f"--- {block.where} ({block.lang}{', serve' if block.get('serve') else ''})\n{code}", flush=True)
        t0 = time.monotonic()
        try:
            if block.get("serve"):
                _serve(code, env, work, timeout)
            elif block.lang == "bash":
                _run_bash(code, env, work, timeout)
            else:
                saved = dict(os.environ)
                os.environ.update(env)
                try:
                    exec(compile(code, block.where, "exec"), namespace)
                finally:
                    os.environ.clear()
                    os.environ.update(saved)
                    os.chdir(work)
        except BaseException as err:  # noqa: BLE001 - report any failure as the block's
            traceback.print_exc()
            print(f"FAILED: {block.where} ({type(err).__name__}: {err})", flush=True)
            return 1
        print(f"--- {block.where} ok in {time.monotonic() - t0:.1f} s", flush=True)
    return 0


# ---------------------------------------------------------------- the tests

if __name__ != "__main__":
    import pytest

    @pytest.fixture(scope="session")
    def hf_home(tmp_path_factory):
        return tmp_path_factory.mktemp("docs_hf_home")

    @pytest.mark.parametrize("page", pages())
    def test_page_snippets_run(page, tmp_path, hf_home):
        blocks = [b for b in parse_page(page) if b.lang in RUN_LANGS]
        if not blocks:
            pytest.skip(f"{page} has no python or bash block")
        env = dict(os.environ)
        bin_dir = str(Path(sys.executable).parent)
        env.update(PATH=bin_dir + os.pathsep + env.get("PATH", ""), HF_HOME=str(hf_home),
                   HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1",
                   MPLBACKEND="Agg", PYTHONUNBUFFERED="1", TOKENIZERS_PARALLELISM="false",
                   OMP_NUM_THREADS="1")  # tiny tensors: one thread each, no spinning against the other tests
        env.pop("HF_DATASETS_CACHE", None)
        work = tmp_path / "work"
        work.mkdir()
        log = tmp_path / "snippets.log"  # a file, not a pipe: nothing a block leaves behind can hold the test
        with open(log, "w") as out:
            proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), page, str(work)], env=env,
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                rc = proc.wait(PAGE_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                rc = proc.wait()
        output = log.read_text(errors="replace")
        assert rc == 0, f"a snippet of {page} failed (status {rc}):\n{output[-8000:]}"
        print("\n".join(line for line in output.splitlines() if line.startswith("--- ") and (" ok in " in line
                        or " skipped: " in line)))  # per-block times (pytest -rP shows them)

    @pytest.mark.parametrize("page", pages())
    def test_fences_are_tagged_and_directives_apply(page):
        for block in parse_page(page):
            assert block.lang in RUN_LANGS + OTHER_LANGS, (
                f"{block.where}: fence tagged {block.lang!r}; use one of {RUN_LANGS + OTHER_LANGS}")
            if block.lang in OTHER_LANGS:
                assert not block.directives, f"{block.where}: test directives on a {block.lang} block"
            else:
                prepared_code(block)  # every sub finds its text

    @pytest.mark.parametrize("page", pages())
    def test_relative_links_exist(page):
        text = (ROOT / page).read_text(encoding="utf-8")
        base = (ROOT / page).parent
        for target in re.findall(r"\]\(([^)\s]+)\)|<img src=\"([^\"]+)\"", text):
            target = next(t for t in target if t)
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            path = target.split("#")[0]
            assert (base / path).exists(), f"{page}: link to {target}, which does not exist"

    def test_readme_is_short_and_opens_with_the_two_commands():
        text = (ROOT / "README.md").read_text(encoding="utf-8")
        assert len(text.splitlines()) <= 160
        first = parse_page("README.md")[0]
        commands = first.code.strip().splitlines()
        assert len(commands) == 2 and first.get("skip") and first.get("skip")[0].startswith("main-job")
        assert "scripts/train_classification.py" in commands[0] and "drift_synthesis.py" in commands[0]
        assert commands[1] in (ROOT / ".ci" / "run").read_text(), ".ci/run runs the README's test command"

    def test_the_parser_reads_directives_and_refuses_bad_ones():
        page = ("<!-- test:\nappend --x 1\nsub --y 2 => --y 3\n-->\n\n```bash\npython scripts/t.py \\\n  --y 2  # c\n"
                "```\n<!-- test: skip gpu -->\n```python\nprint(1)\n```\n")
        first, second = parse_page("README.md", page)
        assert first.directives == [("append", "--x 1"), ("sub", "--y 2 => --y 3")] and first.line == 6
        assert prepared_code(first) == "python scripts/t.py --y 3 --x 1  # c\n"
        ops = Block("p", 1, "bash", "accelerate launch scripts/a.py --q || echo no\npython benchmarks/b.py > o.txt\n"
                    "accelerate launch --multi_gpu scripts/a.py\n", [("append", "--z 1")])
        assert prepared_code(ops) == ("python scripts/a.py --q --z 1 || echo no\npython benchmarks/b.py --z 1 > o.txt\n"
                                      "accelerate launch --multi_gpu scripts/a.py --z 1\n")
        assert second.get("skip") == ["gpu"] and second.lang == "python"
        for bad in ("<!-- test: skip slow -->\n```bash\nx\n```\n", "<!-- test: frobnicate -->\n```bash\nx\n```\n",
                    "<!-- test: env A=1 -->\ntext\n```bash\nx\n```\n", "```bash\nx\n"):
            with pytest.raises(ValueError):
                parse_page("README.md", bad)
        with pytest.raises(ValueError, match="does not occur"):
            prepared_code(Block("p", 1, "bash", "echo hi\n", [("sub", "bye => x")]))


if __name__ == "__main__":
    sys.exit(run_page(sys.argv[1], Path(sys.argv[2])))
