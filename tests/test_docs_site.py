"""The docs site builds with `mkdocs build --strict`: no page outside the nav, no link or image outside docs/ or to a
missing file, no anchor that no heading makes (mkdocs.yml's `validation` turns each into a warning, and strict mode
turns a warning into a failed build). Every picture a built page shows is a file of the built site, and the README's
relative links point at files of the repository. About two seconds: two builds of a few hundred kilobytes."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

from conftest import require

require("mkdocs", 'pip install -e ".[docs]"')  # skipped on a developer's machine, a failure under CI

ROOT = Path(__file__).resolve().parents[1]
IMG_SRC = re.compile(r'<img\b[^>]*\bsrc="([^"]+)"')
MD_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)[^)]*\)")


def build(config: Path, site: Path) -> subprocess.CompletedProcess:
    """`mkdocs build --strict` of `config` into `site`, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config),
                           "--site-dir", str(site)], capture_output=True, text=True, timeout=120)


def nav_pages(nav: list) -> list[str]:
    """The Markdown files the nav of mkdocs.yml names, in order."""
    pages = []
    for item in nav:
        value = next(iter(item.values())) if isinstance(item, dict) else item
        pages += nav_pages(value) if isinstance(value, list) else [value]
    return pages


def test_the_site_builds_strictly_and_every_picture_is_in_it(tmp_path):
    site = tmp_path / "site"
    done = build(ROOT / "mkdocs.yml", site)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "WARNING" not in done.stderr, done.stderr

    import yaml  # mkdocs' own dependency

    config = yaml.load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"), Loader=yaml.BaseLoader)
    pages = nav_pages(config["nav"])
    assert "evaluation.md" in pages and "zoo.md" in pages and "architectures/r3gan.md" in pages
    shown = 0
    for page in pages:
        html = site / ("index.html" if page == "index.md" else page.removesuffix(".md") + "/index.html")
        assert html.is_file(), f"{page} was not built"
        for src in IMG_SRC.findall(html.read_text(encoding="utf-8")):
            parts = urlsplit(src)
            assert not parts.scheme and not parts.netloc, f"{page} shows {src}, which is not part of the site"
            target = (html.parent / unquote(parts.path)).resolve()
            assert target.is_relative_to(site.resolve()) and target.is_file(), f"{page} shows {src}: no such file"
            shown += 1
    # the tables of results show their grids: the zoo's eight, StackedMNIST's real stacks and seven architectures
    evaluation = (site / "evaluation" / "index.html").read_text(encoding="utf-8")
    assert len(re.findall(r'src="\.\./img/stacked-mnist/grid-[a-z0-9-]+\.png"', evaluation)) == 8
    assert shown >= 8 + 8 + 8  # the zoo, StackedMNIST, one per architecture page and more


def test_a_link_outside_the_site_or_a_page_left_out_of_the_nav_fails_the_build(tmp_path):
    """The check above can fail: a copy of the docs with a page the nav leaves out and an image outside docs/
    (the way the StackedMNIST grids were once linked) does not build, and the warnings name both."""
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    (tmp_path / "docs" / "left-out.md").write_text("# Not in the nav\n", encoding="utf-8")
    page = tmp_path / "docs" / "evaluation.md"
    page.write_text(page.read_text(encoding="utf-8") + "\n![grid](../benchmarks/grid-gan.png)\n", encoding="utf-8")
    done = build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert done.returncode != 0
    assert "left-out.md" in done.stderr and "'../benchmarks/grid-gan.png'" in done.stderr, done.stderr


def test_the_readme_links_files_that_exist_and_dev_installs_the_docs_extra():
    """README.md is shown on GitHub, where a link relative to the repository's root works: each such link (an image
    included) names a file that is there. `pip install -e ".[dev]"`, CI's install, brings what builds the site."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    links = [unquote(urlsplit(link).path) for link in MD_LINK.findall(text) if not urlsplit(link).scheme]
    links = [link for link in links if link]  # a bare #anchor links the README itself
    assert links, "the README links no file: the pattern above no longer reads its links"
    for link in links:
        assert (ROOT / link).exists(), f"README.md links {link}, which does not exist"
    assert set(extra("docs")) <= set(extra("dev")), "the dev extra must include the docs extra"


def extra(name: str) -> list[str]:
    """The requirements of pyproject.toml's optional dependency `name` (read without tomllib, which Python 3.10, the
    oldest the project supports, lacks)."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    found = re.search(rf"^{name} = \[(.*?)\]", text, re.MULTILINE | re.DOTALL)
    assert found, f"pyproject.toml has no {name} extra"
    return re.findall(r'"([^"]+)"', found.group(1))
