"""`ganzoo demo`, tested two ways: a gradio_client against pages served on free local ports, and a real headless
Chromium driving a page.

Three shipped zoo models cover the controls: `dcgan-mnist-5k` (seed and number of images only), `cgan-mnist-5k`
(a class picker) and `stylegan-lite-mnist-5k` (truncation and style mixing). Every picture the page returns is
compared, pixel for pixel, with what the model's own method gives for the same settings.

Gradio, gradio_client and selenium come with the `dev` extra; Chromium and its driver are Debian packages that
`.ci/run` installs. On a developer's machine without them these tests are skipped with the reason; under CI (the
variable CI set to a truthy value: tests/conftest.py's `under_ci`) they fail instead, so a broken install cannot pass
as green.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import missing, require
from PIL import Image

import ganzoo
from ganzoo.cli import cli
from ganzoo.images import grid_png_bytes, to_uint8

MODELS = ("dcgan-mnist-5k", "cgan-mnist-5k", "stylegan-lite-mnist-5k")
# Gradio's queue calls pandas options that pandas 3 deprecates; not ganzoo's to fix
pytestmark = [pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting' is deprecated"),
              pytest.mark.filterwarnings("ignore:The copy keyword is deprecated")]


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="ganzoo")


def one_line_error(result, code, *fragments):
    assert result.exit_code == code, (result.exit_code, result.output)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


class Page:
    """A served demo page, its model, and a gradio_client connected to it."""

    def __init__(self, name: str, downloads: Path) -> None:
        from gradio_client import Client

        from ganzoo.demo import build_demo, launch

        self.gan = ganzoo.load(name)
        self.server = launch(build_demo(self.gan, name=name), port=0)
        self.client = Client(self.server.local_url, verbose=False, analytics_enabled=False,
                             download_files=str(downloads))
        api = self.client.view_api(return_format="dict", print_info=False)["named_endpoints"]
        self.params = {route: [p["parameter_name"] for p in spec["parameters"]] for route, spec in api.items()}

    def samples(self, **settings) -> list[np.ndarray]:
        return [_pixels(item["image"]) for item in self.client.predict(**settings, api_name="/sample")]


def _pixels(path: str | Path) -> np.ndarray:
    with Image.open(path) as picture:
        return np.asarray(picture)


def _expected(images: torch.Tensor) -> list[np.ndarray]:
    """What the page must show for a batch: each image's uint8 pixels, (H, W) for grayscale."""
    array = to_uint8(images).numpy()
    return [image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0) for image in array]


def _grid(images: torch.Tensor, nrow: int | None = None) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(grid_png_bytes(images, nrow=nrow))))


def _same(got: list[np.ndarray], want: list[np.ndarray]) -> bool:
    return len(got) == len(want) and all(np.array_equal(g, w) for g, w in zip(got, want, strict=True))


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    require("gradio")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRADIO_TEMP_DIR", str(tmp_path_factory.mktemp("gradio-cache")))
        downloads = tmp_path_factory.mktemp("downloads")
        served = {}
        try:
            for name in MODELS:
                served[name] = Page(name, downloads)
            yield served
        finally:
            for page in served.values():
                page.server.close()


def test_served_offline_on_loopback_without_analytics(pages):
    for page in pages.values():
        assert page.server.local_url.startswith("http://127.0.0.1:")
        assert page.server.share_url is None
        assert page.server.app.analytics_enabled is False
    assert os.environ["GRADIO_ANALYTICS_ENABLED"] == "False"


def test_controls_only_where_the_model_supports_them(pages):
    dcgan, cgan, style = (pages[name].params for name in MODELS)
    assert dcgan["/sample"] == ["seed", "n"] and "/mix" not in dcgan
    assert cgan["/sample"] == ["seed", "n", "label"] and "/mix" not in cgan
    assert style["/sample"] == ["seed", "n", "truncation"]
    assert style["/mix"] == ["seed", "truncation", "rows", "cols", "crossover"]
    assert dcgan["/interpolate"] == ["seed", "n", "seed_b", "frames"]


def test_seed_and_number_of_images(pages):
    page = pages["dcgan-mnist-5k"]
    first = page.samples(seed=3, n=5)
    assert _same(first, _expected(page.gan.sample(5, seed=3)))
    assert _same(page.samples(seed=3, n=5), first)  # the same seed, the same pixels
    assert not _same(page.samples(seed=4, n=5), first)
    assert len(page.samples(seed=3, n=1)) == 1 and len(page.samples(seed=3, n=12)) == 12
    with pytest.raises(Exception, match="greater than maximum value 64"):  # Gradio checks the slider's range
        page.client.predict(seed=3, n=65, api_name="/sample")


def test_same_seed_gives_the_same_file_bytes(pages):
    page = pages["stylegan-lite-mnist-5k"]
    runs = [page.client.predict(seed=11, n=3, truncation=1, api_name="/sample") for _ in range(2)]
    first, second = ([Path(item["image"]).read_bytes() for item in run] for run in runs)
    assert first == second and len(set(first)) == 3


def test_class_picker_gives_that_class(pages):
    page = pages["cgan-mnist-5k"]
    sevens = page.samples(seed=2, n=4, label=7)
    assert _same(sevens, _expected(page.gan.sample(4, seed=2, labels=7)))
    assert not _same(page.samples(seed=2, n=4, label=3), sevens)
    assert _same(page.samples(seed=2, n=4, label=-1), _expected(page.gan.sample(4, seed=2)))  # every class in turn


def test_truncation_changes_the_output(pages):
    page = pages["stylegan-lite-mnist-5k"]
    plain = page.samples(seed=5, n=4, truncation=1)
    half = page.samples(seed=5, n=4, truncation=0.5)
    assert _same(plain, _expected(page.gan.sample(4, seed=5)))
    assert _same(half, _expected(page.gan.sample(4, seed=5, truncation=0.5)))
    assert not _same(half, plain)
    average = page.samples(seed=5, n=4, truncation=0)  # every latent pulled to the average w: one image
    assert all(np.array_equal(image, average[0]) for image in average)


def test_interpolation_gives_frames_and_a_gif(pages):
    page = pages["dcgan-mnist-5k"]
    frames, gif = page.client.predict(seed=3, n=2, seed_b=8, frames=5, api_name="/interpolate")
    assert len(frames) == 5
    assert np.array_equal(_pixels(frames[0]["image"]), _grid(page.gan.sample(2, seed=3)))
    assert np.array_equal(_pixels(frames[-1]["image"]), _grid(page.gan.sample(2, seed=8)))
    with Image.open(gif) as animation:
        assert animation.format == "GIF" and animation.n_frames == 5


def test_style_mixing(pages):
    page = pages["stylegan-lite-mnist-5k"]
    grid = page.client.predict(seed=4, truncation=1, rows=2, cols=3, crossover=2, api_name="/mix")
    want = page.gan.style_mix_grid(2, 3, seed=4, crossover=2)
    assert np.array_equal(_pixels(grid), _grid(want, nrow=4))
    other = page.client.predict(seed=4, truncation=1, rows=2, cols=3, crossover=6, api_name="/mix")
    assert not np.array_equal(_pixels(other), _pixels(grid))


def test_style_mix_grid_corners_are_the_plain_samples():
    gan = ganzoo.load("stylegan-lite-mnist-5k")
    grid = gan.style_mix_grid(2, 3, seed=4, crossover=gan.num_style_layers)  # every layer from the row
    assert grid.shape == (12, *gan.img_shape) and bool((grid[0] == -1).all())
    rows = gan.sample(5, seed=4)[:2]
    assert torch.allclose(grid[4], rows[0], atol=1e-5) and torch.allclose(grid[9], rows[1], atol=1e-5)
    assert torch.allclose(grid[5], rows[0], atol=1e-5)  # the row's styles everywhere: the row's image


def test_mix_command_draws_the_same_grid(tmp_path):
    """`ganzoo mix` and the page's style-mixing tab both draw `GANModel.style_mix_grid`."""
    out = tmp_path / "mix.png"
    result = invoke("mix", "stylegan-lite-mnist-5k", "-o", out, "--rows", 2, "--cols", 3, "--seed", 4,
                    "--crossover", 3, "--truncation", 0.8)
    assert result.exit_code == 0, result.output
    want = ganzoo.load("stylegan-lite-mnist-5k").style_mix_grid(2, 3, seed=4, crossover=3, truncation=0.8)
    assert np.array_equal(_pixels(out), _grid(want, nrow=4))


def test_interpolate_seeds_ends_on_the_seeds_samples():
    gan = ganzoo.load("cgan-mnist-5k")
    walk = gan.interpolate_seeds([1, 2, 3], n=2, frames=5, labels=6)
    assert len(walk) == 5
    for frame, seed in ((0, 1), (2, 2), (4, 3)):
        assert torch.allclose(walk[frame], gan.sample(2, seed=seed, labels=6), atol=1e-5)
    with pytest.raises(ganzoo.errors.GanzooUsageError, match="at least 2 seeds"):
        gan.interpolate_seeds([1], frames=4)


def test_cli_without_gradio_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "gradio", None)  # `import gradio` now raises ImportError
    one_line_error(invoke("demo", "dcgan-mnist-5k"), 1, 'pip install "ganzoo[demo]"')


def test_cli_refuses_a_taken_port(pages):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        one_line_error(invoke("demo", "dcgan-mnist-5k", "--port", port), 2, f"port {port}", "in use", "--port")
    one_line_error(invoke("demo", "no-such-model", "--port", 0), 2, "no-such-model")


@pytest.fixture
def chromium() -> tuple[str, str]:
    """Paths of Chromium and its driver, looked for before any page is served so that a skip costs nothing."""
    require("selenium")
    names = ("chromium", "chromium-browser", "google-chrome")
    browser = next((path for path in map(shutil.which, names) if path), None)
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        missing("Chromium and chromedriver", "apt-get install chromium chromium-driver")
    return browser, driver


def test_browser_moves_the_seed_slider(chromium, pages, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    browser, driver_path = chromium
    page = pages["cgan-mnist-5k"]
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1200,900",
                 "--no-first-run", "--disable-extensions", "--disable-background-networking"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})  # every request the page makes
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver_path))
    try:
        driver.get(page.server.local_url)
        wait = WebDriverWait(driver, 30, poll_frequency=0.2)

        def images() -> list[str]:
            found = driver.find_elements(By.CSS_SELECTOR, "#samples img")
            return [src for src in (image.get_attribute("src") for image in found) if src]

        wait.until(lambda _: len(images()) == 16)  # the page samples on load: 16 images of seed 0
        before = images()
        slider = driver.find_element(By.CSS_SELECTOR, "#seed input[type=range]")
        slider.send_keys(Keys.ARROW_RIGHT)  # the seed slider moves from 0 to 1
        wait.until(lambda _: len(images()) == 16 and images()[0] != before[0])
        seed_box = driver.find_element(By.CSS_SELECTOR, "#seed input[type=number]")
        assert seed_box.get_attribute("value") == "1"
        time.sleep(0.5)  # let the new images finish drawing before the screenshot
        shown = []
        for src in images():
            with urllib.request.urlopen(src, timeout=10) as response:  # the page's own server, on 127.0.0.1
                shown.append(np.asarray(Image.open(io.BytesIO(response.read()))))
        assert _same(shown, _expected(page.gan.sample(16, seed=1)))
        shot = tmp_path / "demo-page.png"
        assert driver.save_screenshot(str(shot))
        requested = [json.loads(entry["message"])["message"] for entry in driver.get_log("performance")]
        urls = {m["params"]["request"]["url"] for m in requested if m["method"] == "Network.requestWillBeSent"}
        elsewhere = sorted(u for u in urls if not u.startswith(("http://127.0.0.1:", "data:", "blob:")))
        assert urls and not elsewhere, f"the page fetched from outside this machine: {elsewhere}"
    finally:
        driver.quit()
    with Image.open(shot) as picture:
        assert picture.size[0] >= 800 and picture.getextrema() != ((0, 0),) * len(picture.getbands())
    keep = os.environ.get("GANZOO_TEST_ARTIFACTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shot = Path(shutil.copy(shot, Path(keep) / shot.name))
    print(f"demo screenshot: {shot}")


def _image_to_image_page(arch: str, tmp_path: Path) -> tuple[Any, Any, Any]:
    """A tiny untrained model of `arch` (its test config), its page served on a free port, and a client."""
    from gradio_client import Client

    from ganzoo.demo import build_demo, launch
    from ganzoo.registry import get_architecture

    require("gradio")
    torch.manual_seed(0)
    gan = ganzoo.create(arch, **get_architecture(arch).test_config)
    server = launch(build_demo(gan, name=arch), port=0)
    client = Client(server.local_url, verbose=False, analytics_enabled=False, download_files=str(tmp_path / "dl"))
    return gan, server, client


def _upload(tmp_path: Path, size: int, alpha: bool = False) -> Path:
    """A PNG of random colours (with a half-transparent left half when `alpha`)."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (size, size, 4 if alpha else 3), dtype=np.uint8)
    if alpha:
        pixels[:, : size // 2, 3] = 128
    path = tmp_path / f"in-{size}.png"
    Image.fromarray(pixels, mode="RGBA" if alpha else "RGB").save(path)
    return path


def test_a_two_way_translation_model_gets_an_upload_page_that_translates_as_the_cli_does(tmp_path, monkeypatch):
    from gradio_client import handle_file

    from ganzoo.translation import translate_files

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio-cache"))
    gan, server, client = _image_to_image_page("cyclegan", tmp_path)
    try:
        api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
        assert set(api) == {"/translate"}
        assert [p["parameter_name"] for p in api["/translate"]["parameters"]] == ["image", "fit", "reverse"]
        upload = _upload(tmp_path, 40, alpha=True)  # fitted to 16x16, composited over white, as the CLI does
        shown = {reverse: _pixels(client.predict(handle_file(str(upload)), True, reverse, api_name="/translate"))
                 for reverse in (False, True)}
        for reverse in (False, True):
            written = translate_files(gan, [upload], tmp_path / f"cli-{reverse}", size=16, reverse=reverse)
            assert np.array_equal(shown[reverse], _pixels(written[0])), reverse
        assert not np.array_equal(shown[False], shown[True])  # reverse is not ignored
        assert shown[False].shape == (16, 16, 3)
        # unticked, the image goes in as it is (a ResNet G takes any size its two downsamplings divide)
        as_is = _pixels(client.predict(handle_file(str(upload)), False, False, api_name="/translate"))
        assert as_is.shape == (40, 40, 3)
    finally:
        server.close()


def test_an_upscaling_model_gets_an_upload_page_and_one_line_errors(tmp_path, monkeypatch):
    from gradio_client import handle_file

    from ganzoo.translation import upscale_files

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio-cache"))
    gan, server, client = _image_to_image_page("srgan", tmp_path)
    try:
        api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
        assert set(api) == {"/upscale"}
        assert [p["parameter_name"] for p in api["/upscale"]["parameters"]] == ["image", "fit"]
        upload = _upload(tmp_path, 12)  # fitted to 4x4 (16 / scale 4), then upscaled to 16x16
        shown = _pixels(client.predict(handle_file(str(upload)), True, api_name="/upscale"))
        written = upscale_files(gan, [upload], tmp_path / "cli", size=4)
        assert shown.shape == (16, 16, 3) and np.array_equal(shown, _pixels(written[0]))
        unfitted = _pixels(client.predict(handle_file(str(upload)), False, api_name="/upscale"))
        assert unfitted.shape == (48, 48, 3)  # 12x12 as it is, times 4
        with pytest.raises(Exception, match="no image to upscale: upload one"):
            client.predict(None, True, api_name="/upscale")
    finally:
        server.close()
