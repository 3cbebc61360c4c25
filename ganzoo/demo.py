"""`ganzoo demo`: a Gradio page over a model's own sampling methods (the optional extra `pip install "ganzoo[demo]"`).

Every picture on the page comes from `GANModel.sample`, `GANModel.interpolate_seeds` or `GANModel.style_mix_grid`;
this module only lays out controls and turns tensors into pictures. A control is shown only where the model supports
it: a class picker for conditional models, truncation for models with a mapping network, a style-mixing tab for
StyleGAN-style models.

It works with no network: Gradio's analytics are switched off before Gradio is imported, the page is served on
127.0.0.1 unless another host is given, and a public share link is made only when asked for.
"""

from __future__ import annotations

import inspect
import io
import ipaddress
import logging
import os
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ganzoo.errors import GanzooError, GanzooUsageError

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from ganzoo.model import GANModel

__all__ = ["GRADIO_FLOOR", "DemoServer", "build_demo", "check_port", "launch", "require_gradio"]

logger = logging.getLogger(__name__)

GRADIO_FLOOR = (6, 31)  # the oldest Gradio the tests ran against; pyproject's `demo` extra says the same
INSTALL_HINT = 'pip install "ganzoo[demo]"'
MAX_IMAGES = 64
ALL_CLASSES = -1  # the class picker's "every class in turn", which is what `sample(labels=None)` does
# Tiny digits are shown with hard pixel edges instead of a blur when the browser scales them up.
# The mixing grid and the walk are scaled up to fill their boxes.
_CSS = (".ganzoo-pixels img { image-rendering: pixelated; }\n"
        "#mixed img, #walk-gif img { width: 100%; height: 100%; object-fit: contain; }")


def require_gradio() -> ModuleType:
    """Import Gradio with its analytics off, or raise a one-line error naming the extra to install."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # read by Gradio at import and at launch: no usage pings
    try:
        import gradio
    except ImportError:
        raise GanzooError(f"the demo needs Gradio, an optional extra: {INSTALL_HINT}") from None
    found = tuple(int(part) for part in gradio.__version__.split(".")[:2] if part.isdigit())
    if found < GRADIO_FLOOR:
        floor = ".".join(map(str, GRADIO_FLOOR))
        raise GanzooError(f"the demo needs Gradio {floor} or newer, found {gradio.__version__}: "
                          f"pip install -U \"ganzoo[demo]\"")
    return gradio


def check_port(host: str, port: int) -> int:
    """The port to serve on: `port` if it is free on `host`, a free one if `port` is 0; a usage error otherwise."""
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:  # a host name such as localhost
        family = socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does: a closing port is free
        try:
            probe.bind((host, port))
        except socket.gaierror:
            raise GanzooUsageError(f"unknown host {host!r}; give an address of this machine, e.g. 127.0.0.1") from None
        except OSError as exc:
            reason = "is in use" if port else "has no free port"
            raise GanzooUsageError(f"port {port} on {host} {reason} ({exc.strerror}); choose another --port "
                                   f"(0 picks a free one)") from None
        return probe.getsockname()[1]


def _pictures(images: torch.Tensor) -> list[Image.Image]:
    """A batch in [-1, 1] as PIL images: grayscale for one channel, RGB for three, the same bytes `to_uint8` gives."""
    from PIL import Image

    from ganzoo.images import to_uint8

    array = to_uint8(images)
    if array.shape[1] == 1:
        return [Image.fromarray(image[0].numpy(), mode="L") for image in array]
    return [Image.fromarray(image.permute(1, 2, 0).numpy(), mode="RGB") for image in array]


def _grid_picture(images: torch.Tensor, nrow: int | None = None) -> Image.Image:
    from PIL import Image

    from ganzoo.images import grid_png_bytes

    return Image.open(io.BytesIO(grid_png_bytes(images, nrow=nrow)))


def _describe(gan: GANModel, name: str) -> str:
    channels, height, width = gan.img_shape
    facts = [f"`{gan.architecture}`", f"{width}x{height} px, {'RGB' if channels == 3 else 'grayscale'}"]
    if gan.num_classes:
        facts.append(f"{gan.num_classes} classes")
    if gan.supports_truncation:
        facts.append("truncation")
    if gan.supports_style_mixing:
        facts.append("style mixing")
    source = str(gan.info.get("source") or "")
    where = " (shipped with its plugin)" if source.startswith("shipped:") else f" (from {source})" if source else ""
    return f"## {name}\n{' · '.join(facts)}{where}"


def _guarded(fn: Callable[..., Any], names: list[str]) -> Callable[..., Any]:
    """`fn` with ganzoo's one-line errors shown on the page, and its API parameters called `names`."""
    gr = require_gradio()

    def run(*values: Any) -> Any:
        try:
            return fn(*values)
        except GanzooError as exc:
            raise gr.Error(str(exc)) from None

    run.__name__ = fn.__name__
    run.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(param, inspect.Parameter.POSITIONAL_OR_KEYWORD) for param in names])
    return run


def build_demo(gan: GANModel, name: str | None = None, max_images: int = MAX_IMAGES) -> Any:
    """A Gradio Blocks page for `gan`: samples, a walk between two seeds, and style mixing where the model has it.

    The page's API (for `gradio_client`) has `/sample` (`seed`, `n`, then `label` and `truncation` where shown;
    label -1 cycles through the classes), `/interpolate` (the same, then `seed_b` and `frames`) and, for models with
    style mixing, `/mix` (`seed`, `truncation` where shown, `rows`, `cols`, `crossover`).
    """
    gr = require_gradio()
    name = name or gan.architecture
    if gan.task != "generate":
        return _build_image_to_image(gan, name)
    workdir = tempfile.TemporaryDirectory(prefix="ganzoo-demo-")  # GIFs; removed when the page object goes
    shared_names = ["seed", "n"]  # the controls every tab shares, in the order handlers receive them
    mix_names = ["seed", "truncation"] if gan.supports_truncation else ["seed"]  # what style mixing uses of them

    def settings(values: tuple[Any, ...], names: list[str]) -> tuple[dict[str, Any], tuple[Any, ...]]:
        """Split a handler's values into sampling keyword arguments (the controls `names`) and the rest."""
        chosen = dict(zip(names, values, strict=False))
        rest = values[len(names):]
        kwargs: dict[str, Any] = {"seed": int(chosen["seed"])}
        if "n" in chosen:
            n = int(chosen["n"])
            if not 1 <= n <= max_images:
                raise GanzooUsageError(f"number of images must be from 1 to {max_images}, got {n}")
            kwargs["n"] = n
        if "label" in chosen:
            label = int(chosen["label"])
            kwargs["labels"] = None if label == ALL_CLASSES else label
        if "truncation" in chosen:
            kwargs["truncation"] = float(chosen["truncation"])
        return kwargs, rest

    def sample(*values: Any) -> list[Image.Image]:
        kwargs, _ = settings(values, shared_names)
        logger.debug("demo sample %s", kwargs)
        return _pictures(gan.sample(kwargs.pop("n"), **kwargs))

    def interpolate(*values: Any) -> tuple[list[Image.Image], str]:
        from ganzoo.images import save_gif

        kwargs, (seed_b, frames) = settings(values, shared_names)
        seed_a, n, frames = kwargs.pop("seed"), kwargs.pop("n"), int(frames)
        walk = gan.interpolate_seeds([seed_a, int(seed_b)], n=n, frames=frames, **kwargs)
        key = "-".join(f"{k}{v}" for k, v in sorted(kwargs.items()))
        gif = Path(workdir.name) / f"walk-{seed_a}-{int(seed_b)}-n{n}-f{frames}-{key}.gif"
        save_gif(walk, gif)
        return [_grid_picture(frame) for frame in walk], str(gif)

    def mix(*values: Any) -> Image.Image:
        kwargs, (rows, cols, crossover) = settings(values, mix_names)
        grid = gan.style_mix_grid(int(rows), int(cols), seed=kwargs["seed"], crossover=int(crossover),
                                  truncation=kwargs.get("truncation", 1.0))
        return _grid_picture(grid, nrow=int(cols) + 1)

    with gr.Blocks(title=f"ganzoo demo: {name}", analytics_enabled=False, delete_cache=(3600, 3600)) as app:
        app.ganzoo_workdir = workdir  # keeps the folder alive as long as the page
        gr.Markdown(_describe(gan, name))
        with gr.Row():
            seed = gr.Slider(0, 99_999, value=0, step=1, label="Seed", elem_id="seed",
                             info="The same seed gives the same images.")
            count = gr.Slider(1, max_images, value=min(16, max_images), step=1, label="Number of images",
                              elem_id="num-images")
        shared = [seed, count]
        if gan.num_classes:
            choices = [("every class in turn", ALL_CLASSES)] + [(str(k), k) for k in range(gan.num_classes)]
            label = gr.Dropdown(choices, value=ALL_CLASSES, label="Class", elem_id="class")
            shared.append(label)
            shared_names.append("label")
        if gan.supports_truncation:
            truncation = gr.Slider(0, 1, value=1, step=0.05, label="Truncation", elem_id="truncation",
                                   info="1 is plain sampling; towards 0 images move to the average image.")
            shared.append(truncation)
            shared_names.append("truncation")
        with gr.Tab("Samples"):
            gallery = gr.Gallery(label="Samples", elem_id="samples", columns=8, format="png", object_fit="contain",
                                 interactive=False, elem_classes=["ganzoo-pixels"])
        with gr.Tab("Interpolation"):
            with gr.Row():
                seed_b = gr.Number(value=1, precision=0, minimum=0, label="To seed", elem_id="seed-b")
                frames = gr.Slider(2, 60, value=16, step=1, label="Frames", elem_id="frames")
                walk_button = gr.Button("Walk from seed to seed", elem_id="walk")
            walk_gif = gr.Image(label="Walk (GIF)", type="filepath", format="gif", interactive=False, height=360,
                                elem_id="walk-gif", elem_classes=["ganzoo-pixels"])
            walk_frames = gr.Gallery(label="Frames", elem_id="walk-frames", columns=8, format="png",
                                     object_fit="contain", interactive=False, elem_classes=["ganzoo-pixels"])
        if gan.supports_style_mixing:
            layers = gan.num_style_layers
            with gr.Tab("Style mixing"):
                with gr.Row():
                    rows = gr.Slider(1, 8, value=3, step=1, label="Rows (coarse styles)", elem_id="mix-rows")
                    cols = gr.Slider(1, 8, value=5, step=1, label="Columns (fine styles)", elem_id="mix-cols")
                    crossover = gr.Slider(0, layers, value=layers // 2, step=1, label="Crossover layer",
                                          elem_id="crossover",
                                          info=f"Layers before it take the row's style, the rest the column's "
                                               f"(0 to {layers}).")
                    mix_button = gr.Button("Mix", elem_id="mix")
                mixed = gr.Image(label="Style mixing: top row and left column are plain samples", type="pil",
                                 format="png", interactive=False, height=360, elem_id="mixed",
                                 elem_classes=["ganzoo-pixels"])
            mix_inputs = [c for c, n in zip(shared, shared_names, strict=True) if n in mix_names]
            mix_handler = _guarded(mix, [*mix_names, "rows", "cols", "crossover"])
            mix_button.click(mix_handler, [*mix_inputs, rows, cols, crossover], mixed, api_name="mix")
        triggers = [app.load, *(control.change for control in shared)]
        gr.on(triggers, _guarded(sample, shared_names), shared, gallery, api_name="sample", trigger_mode="always_last")
        walk_handler = _guarded(interpolate, [*shared_names, "seed_b", "frames"])
        walk_button.click(walk_handler, [*shared, seed_b, frames], [walk_frames, walk_gif], api_name="interpolate")
    logger.info("demo page for %s: controls %s", name, ", ".join(shared_names))
    return app


def _build_image_to_image(gan: GANModel, name: str) -> Any:
    """The page of a translation or super-resolution model: an uploaded image (a file, or pasted), fitted to the
    model's training input size unless told otherwise, and the model's output, as `ganzoo translate` / `ganzoo upscale`
    would write it for that file (alpha composited over white, seed 0). A two-way model (CycleGAN) gets a Reverse
    box (B to A).

    The page's API (for `gradio_client`) is `/translate` or `/upscale` (the model's task): `image` (a file), `fit`
    (a bool), and `reverse` for a two-way model."""
    from ganzoo.translation import read_input

    gr = require_gradio()
    what = gan.task
    two_way = bool(getattr(gan.sampler, "two_way", False))
    fit_size = gan.img_shape[-1] // int(getattr(gan.sampler, "scale", 1) or 1)  # the side training fed G
    names = ["image", "fit", *(["reverse"] if two_way else [])]

    def convert(image: str | None, fit: bool, reverse: bool = False) -> Image.Image:
        if not image:
            raise GanzooUsageError(f"no image to {what}: upload one (a PNG or JPEG file) or paste it")
        x = read_input(gan, Path(image), size=fit_size if fit else None,
                       fix=f"tick 'Fit to {fit_size}x{fit_size}', or upload another size")
        x = x.unsqueeze(0).float().div(127.5).sub(1.0)
        logger.debug("demo %s %s fit=%s reverse=%s", what, tuple(x.shape), fit, reverse)
        out = gan.translate(x, seed=0, reverse=reverse) if what == "translate" else gan.upscale(x)
        return _pictures(out)[0]

    convert.__name__ = what
    verb = "Translate" if what == "translate" else f"Upscale x{getattr(gan.sampler, 'scale', 1)}"
    with gr.Blocks(title=f"ganzoo demo: {name}", analytics_enabled=False, delete_cache=(3600, 3600)) as app:
        gr.Markdown(_describe(gan, name))
        with gr.Row():
            # kept as uploaded: its own mode (alpha included, composited as training does) and lossless PNG
            source = gr.Image(type="filepath", image_mode=None, format="png", label="Input image",
                              sources=["upload", "clipboard"], height=360, elem_id="input",
                              elem_classes=["ganzoo-pixels"])
            result = gr.Image(type="pil", format="png", label="Output", interactive=False, height=360,
                              elem_id="output", elem_classes=["ganzoo-pixels"])
        with gr.Row():
            fit = gr.Checkbox(value=True, label=f"Fit to {fit_size}x{fit_size} px, as training did", elem_id="fit",
                              info="Shorter side resized, then centre-cropped; untick to feed the image as it is.")
            controls = [source, fit]
            if two_way:
                controls.append(gr.Checkbox(value=False, label="Reverse: domain B to A", elem_id="reverse"))
            button = gr.Button(verb, elem_id="run")
        button.click(_guarded(convert, names), controls, result, api_name=what)
    logger.info("demo page for %s: %s", name, ", ".join(names))
    return app


class DemoServer:
    """A running demo page: its local URL, its share URL (only when asked for) and a way to stop it."""

    def __init__(self, app: Any, local_url: str, share_url: str | None) -> None:
        self.app = app
        self.local_url = local_url
        self.share_url = share_url

    def wait(self) -> None:
        """Block until the server stops; Ctrl-C raises KeyboardInterrupt here, for the caller to `close`."""
        while self.app.is_running:
            time.sleep(0.2)

    def close(self) -> None:
        """Stop the server and free its port."""
        self.app.close(verbose=False)


def launch(app: Any, host: str = "127.0.0.1", port: int = 7860, share: bool = False) -> DemoServer:
    """Serve `app` on `host:port` in a background thread and return at once; a public share link only if `share`."""
    require_gradio()
    port = check_port(host, port)
    if host not in ("127.0.0.1", "localhost", "::1"):
        logger.warning("the demo is served on %s: other machines on the network can open it", host)
    app.queue(default_concurrency_limit=1)  # one generator; requests take turns
    _, local_url, share_url = app.launch(server_name=host, server_port=port, share=share, prevent_thread_lock=True,
                                         quiet=True, inbrowser=False, ssr_mode=False, mcp_server=False, pwa=False,
                                         css=_CSS)
    return DemoServer(app, local_url, share_url or None)
