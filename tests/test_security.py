"""Security: only safetensors are read, configs are data, Hub file names stay in the cache, tokens are never shown.

The source scan parses every module of the package and its plugins; each rule is checked against examples of the
code it must catch, so a scan that passes is known to be able to fail.
"""

from __future__ import annotations

import ast
import json
import logging
import shutil
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_registry import install

import ganzoo
from ganzoo import registry
from ganzoo.cli import cli

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted([*(ROOT / "ganzoo").rglob("*.py"), *(ROOT / "plugins").rglob("*.py")])

UNSAFE_MODULES = {"pickle", "_pickle", "cPickle", "dill", "cloudpickle", "shelve", "marshal", "joblib"}
DYNAMIC_IMPORTS = {"import_module", "__import__"}


# --- the source scan -------------------------------------------------------------------------------------------------


def _dotted(node: ast.AST) -> str:
    """`torch.load` for an attribute chain of names, '' for anything else."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def _keyword_is(call: ast.Call, name: str, value: object) -> bool:
    return any(k.arg == name and isinstance(k.value, ast.Constant) and k.value.value is value for k in call.keywords)


def _constant_tables(tree: ast.Module) -> set[str]:
    """Module-level names bound to a dict literal whose values are all string literals (e.g. a lazy-import table)."""
    tables = set()
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) \
            else []
        value = getattr(node, "value", None)
        if isinstance(value, ast.Dict) and all(isinstance(v, ast.Constant) and isinstance(v.value, str)
                                               for v in value.values):
            tables.update(t.id for t in targets if isinstance(t, ast.Name))
    return tables


def _from_table(expr: ast.AST, tables: set[str]) -> bool:
    """`TABLE.get(...)` or `TABLE[...]` for a constant table: a value the code chose, not the data."""
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and expr.func.attr == "get":
        return _dotted(expr.func.value) in tables
    return isinstance(expr, ast.Subscript) and _dotted(expr.value) in tables


def _fixed_module_name(arg: ast.AST, scope: ast.AST, tables: set[str]) -> bool:
    """Whether a dynamic import's argument is a literal, or a name only ever bound from a constant table."""
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return True
    if not isinstance(arg, ast.Name):
        return False
    sources = [node.value for node in ast.walk(scope) if isinstance(node, ast.Assign)
               and any(isinstance(t, ast.Name) and t.id == arg.id for t in node.targets)]
    return bool(sources) and all(_from_table(source, tables) for source in sources)


def scan(source: str, filename: str = "<snippet>") -> list[str]:
    """Problems in `source`: unpickling modules, unsafe torch.load, eval/exec/compile, imports driven by data."""
    tree = ast.parse(source, filename)
    tables = _constant_tables(tree)
    torch_load_names = {"torch.load"}
    problems = []

    def where(node: ast.AST) -> str:
        return f"{filename}:{node.lineno}"

    scopes: list[ast.AST] = [tree]
    parents: dict[ast.AST, ast.AST] = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node

    def scope_of(node: ast.AST) -> ast.AST:
        while node in parents:
            node = parents[node]
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                return node
        return scopes[0]

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in UNSAFE_MODULES:
                    problems.append(f"{where(node)}: imports {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] in UNSAFE_MODULES:
                problems.append(f"{where(node)}: imports from {node.module}")
            if node.module == "torch":
                torch_load_names.update(a.asname or a.name for a in node.names if a.name == "load")
                if any(a.name == "save" for a in node.names):
                    problems.append(f"{where(node)}: imports torch.save (weights are safetensors only)")
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            if name in torch_load_names and not _keyword_is(node, "weights_only", True):
                problems.append(f"{where(node)}: {name}() without weights_only=True")
            elif name == "torch.save":
                problems.append(f"{where(node)}: torch.save (weights are safetensors only)")
            elif name in ("eval", "exec", "compile", "builtins.eval", "builtins.exec"):
                problems.append(f"{where(node)}: {name}()")
            elif name.split(".")[-1] in DYNAMIC_IMPORTS and (name.startswith("importlib.") or name in DYNAMIC_IMPORTS):
                arg = node.args[0] if node.args else None
                if arg is None or not _fixed_module_name(arg, scope_of(node), tables):
                    problems.append(f"{where(node)}: {name}() of a module name that is not fixed in the code")
            elif name.split(".")[-1] == "load" and name.split(".")[0] in ("np", "numpy") \
                    and _keyword_is(node, "allow_pickle", True):
                problems.append(f"{where(node)}: {name}(allow_pickle=True)")
            elif name in ("yaml.load", "yaml.unsafe_load", "yaml.full_load"):
                problems.append(f"{where(node)}: {name}() (use yaml.safe_load)")
    return problems


@pytest.mark.parametrize("snippet", [
    "import pickle\n",
    "import cloudpickle as cp\n",
    "from pickle import loads\n",
    "import dill.settings\n",
    "import torch\nstate = torch.load(path)\n",
    "import torch\nstate = torch.load(path, weights_only=False)\n",
    "import torch\nstate = torch.load(path, map_location='cpu', weights_only=flag)\n",
    "from torch import load\nstate = load(path)\n",
    "from torch import load as tload\nstate = tload(path)\n",
    "import torch\ntorch.save(model.state_dict(), path)\n",
    "value = eval(config['lr'])\n",
    "exec(open(path).read())\n",
    "code = compile(text, 'x', 'exec')\n",
    "import importlib\ndef make(cfg):\n    return importlib.import_module(cfg['module'])\n",
    "import importlib\ndef make(cfg):\n    name = cfg['architecture']\n    return importlib.import_module(name)\n",
    "from importlib import import_module\nmod = import_module(data)\n",
    "mod = __import__(config.name)\n",
    "import numpy as np\narr = np.load(path, allow_pickle=True)\n",
    "import yaml\ncfg = yaml.load(text)\n",
], ids=lambda s: s.strip().splitlines()[-1][:40])
def test_the_scan_catches_unsafe_code(snippet):
    assert scan(snippet), f"not caught:\n{snippet}"


@pytest.mark.parametrize("snippet", [
    "import torch\nstate = torch.load(path, map_location='cpu', weights_only=True)\n",
    "model.eval()\nG.eval().requires_grad_(False)\n",
    "import importlib\nmod = importlib.import_module('ganzoo.data')\n",
    "import importlib\n_LAZY = {'a': 'ganzoo.api'}\ndef get(name):\n    module = _LAZY.get(name)\n"
    "    return importlib.import_module(module)\n",
    "from safetensors.torch import load_file\nstate = load_file(path)\n",
    "import numpy as np\narr = np.load(path)\n",
], ids=lambda s: s.strip().splitlines()[-1][:40])
def test_the_scan_lets_safe_code_through(snippet):
    assert scan(snippet) == []


def test_the_package_and_plugins_pass_the_scan():
    assert len(SOURCES) > 20, SOURCES  # the scan really looked at the package
    problems = [p for path in SOURCES for p in scan(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))]
    assert not problems, "\n".join(problems)


def test_a_scan_of_a_planted_problem_in_a_copy_of_the_package_fails(tmp_path):
    """The scan of the real files fails once one of them gains an unsafe line (it reads what is on disk)."""
    source = (ROOT / "ganzoo" / "serialization.py").read_text(encoding="utf-8")
    planted = source + "\n\ndef _legacy(path):\n    import torch\n    return torch.load(path)\n"
    assert scan(source) == [] and scan(planted)


# --- configs are data ------------------------------------------------------------------------------------------------


EVIL = """
from pathlib import Path
Path({marker!r}).write_text("imported")
architecture = None
def run(*args, **kwargs):
    Path({marker!r}).write_text("called")
"""


@pytest.fixture
def evil_module(fake_site, tmp_path):
    """A module on sys.path that leaves a marker file if anything imports it; yields (name, marker)."""
    marker = tmp_path / "IMPORTED"
    name = "ganzoo_evil_payload"
    (fake_site / f"{name}.py").write_text(EVIL.format(marker=str(marker)))
    sys.modules.pop(name, None)
    yield name, marker
    sys.modules.pop(name, None)


def _invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="ganzoo")


def _one_line(result, code):
    assert result.exit_code == code, (result.exit_code, result.output)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in result.output, result.output
    return lines[0]


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("security") / "model"
    ganzoo.create("dcgan", seed=0, **registry.get_architecture("dcgan").test_config).save_pretrained(folder,
                                                                                                     samples=False)
    return folder


@pytest.mark.parametrize("spelling", ["{m}:architecture", "{m}.architecture", "{m}", "{m}:run", "{m}.run"])
def test_a_config_naming_an_import_path_imports_nothing(spelling, evil_module, model_folder, tmp_path):
    name, marker = evil_module
    folder = tmp_path / "model"
    shutil.copytree(model_folder, folder)
    config = json.loads((folder / "config.json").read_text())
    config["architecture"] = spelling.format(m=name)
    (folder / "config.json").write_text(json.dumps(config))
    line = _one_line(_invoke("sample", folder, "-o", tmp_path / "grid.png"), 2)
    assert "unknown architecture" in line
    with pytest.raises(ganzoo.GanzooError):
        ganzoo.load(folder)
    assert not marker.exists() and name not in sys.modules


def test_a_run_config_naming_an_import_path_imports_nothing(evil_module, tmp_path):
    name, marker = evil_module
    run = tmp_path / "run"
    run.mkdir()
    plan = {"architecture": f"{name}:architecture", "config": {}, "recipe": {}, "options": {}}
    (run / "config.json").write_text(json.dumps(plan))
    _one_line(_invoke("train", "--resume", "--out", run), 2)
    assert not marker.exists() and name not in sys.modules


@pytest.mark.parametrize("args", [
    lambda m: ["--arch", f"{m}:architecture"],
    lambda m: ["--arch", "dcgan", "--loss", f"{m}:run"],
    lambda m: ["--arch", "dcgan", "--set", f"loss={m}.run"],
    lambda m: ["--arch", "dcgan", "--data", f"{m}:run"],
], ids=["arch", "loss", "set-loss", "data"])
def test_cli_names_that_look_like_import_paths_import_nothing(args, evil_module, tmp_path):
    name, marker = evil_module
    _one_line(_invoke("train", *args(name), "--steps", 1, "--out", tmp_path / "run"), 2)
    assert not marker.exists() and name not in sys.modules


def test_a_plugin_is_imported_only_through_an_installed_entry_point(evil_module, fake_site, tmp_path):
    """The only way code is imported by name is an entry point a distribution installed: the user's own choice."""
    name, marker = evil_module
    install(fake_site, "evilplug", "0.1", {"evil": f"{name}:architecture"}, {})
    assert "evil" in ganzoo.list_models() and not marker.exists()  # listed without importing
    _one_line(_invoke("info", "evil"), 1)  # imported on request, then refused: not an Architecture
    assert marker.exists()


# --- Hub file names --------------------------------------------------------------------------------------------------


@pytest.fixture
def online(hub, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_TOKEN", hub.write_token)
    return hub


TRAVERSALS = ["../escape.txt", "../../escape.txt", "../../../../escape.safetensors", "nested/../../../escape.json",
              "..", "./../generator.safetensors"]


def _files_outside(root: Path, cache: Path) -> set[str]:
    return {str(p) for p in root.rglob("*") if p.is_file() and cache not in p.parents}


def test_hub_file_names_cannot_leave_the_cache(online, model_folder, tmp_path):
    files = {name: (model_folder / name).read_bytes() for name in ("config.json", "generator.safetensors")}
    files.update({name: b"written outside the cache" for name in TRAVERSALS})
    online.put("tester/evil", files)
    cache = tmp_path / "hf-home"
    before = _files_outside(tmp_path.parent, cache)
    result = _invoke("pull", "tester/evil")
    assert result.exit_code == 0, result.output
    folder = Path(result.stdout.strip())
    assert cache in folder.parents
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "generator.safetensors"]
    assert ganzoo.load("tester/evil").architecture == "dcgan"
    assert _files_outside(tmp_path.parent, cache) == before
    assert not any("escape" in str(p) for p in tmp_path.parent.rglob("*escape*"))


@pytest.mark.parametrize("name", TRAVERSALS)
def test_huggingface_hub_refuses_names_that_leave_the_cache(name, online, tmp_path):
    """The second line of defence, should ganzoo ever download a name it was given: huggingface_hub refuses it."""
    from huggingface_hub import hf_hub_download

    online.put("tester/evil", {name: b"written outside the cache"})
    with pytest.raises(ValueError, match=r"\.\."):
        hf_hub_download("tester/evil", name, endpoint=online.url, cache_dir=str(tmp_path / "hf-home" / "hub"))
    assert not any(tmp_path.parent.rglob("*escape*"))


@pytest.mark.parametrize("revision", ["../../../escape", "main/../../../escape", "..%2F..%2Fescape"])
def test_a_revision_cannot_leave_the_cache(revision, online, model_folder, tmp_path):
    online.put("tester/tiny", {n: (model_folder / n).read_bytes() for n in ("config.json", "generator.safetensors")})
    before = _files_outside(tmp_path.parent, tmp_path / "hf-home")
    line = _one_line(_invoke("pull", "tester/tiny", "--revision", revision), 2)
    assert "no revision" in line
    assert _files_outside(tmp_path.parent, tmp_path / "hf-home") == before


# --- tokens ----------------------------------------------------------------------------------------------------------


def _all_text(result, caplog) -> str:
    records = "\n".join(f"{r.name} {r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records)
    return "\n".join([result.output, records])


def test_the_token_is_never_printed_or_logged(online, model_folder, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="huggingface_hub")
    token = online.write_token
    runs = [
        _invoke("-v", "push", model_folder, "--repo", "tester/secret", "-m", "with a token"),
        _invoke("-v", "pull", "tester/secret"),
        _invoke("-v", "sample", "tester/secret", "-n", 2, "-o", tmp_path / "g.png"),
    ]
    for result in runs:
        assert result.exit_code == 0, result.output
    text = "\n".join(_all_text(r, caplog) for r in runs)
    assert "pushed to tester/secret" in text and any(r.name.startswith("ganzoo") for r in caplog.records)
    assert token not in text
    for name, data in online.files("tester/secret").items():
        assert token.encode() not in data, name


@pytest.mark.parametrize("token", ["hf_not_a_valid_token_at_all_9876", "hf_loopback_read_token_0123456789"])
def test_a_rejected_token_is_not_echoed(token, online, model_folder, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("HF_TOKEN", token)
    result = _invoke("-v", "push", model_folder, "--repo", "tester/denied")
    line = _one_line(result, 1)
    assert "token" in line.lower() or "log in" in line
    assert token not in _all_text(result, caplog)
