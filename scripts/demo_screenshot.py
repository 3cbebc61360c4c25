"""Screenshot of `ganzoo demo MODEL` as a browser shows it, for the docs (docs/demo.md).

    .venv/bin/python scripts/demo_screenshot.py cgan-twemoji-32 docs/img/demo-colour.png --seed 3

Serves the model's demo page on a free local port, opens it in headless Chromium (Debian's `chromium` and
`chromium-driver`, as tests/test_demo.py uses), waits until the page's first samples are drawn, moves the seed
slider to `--seed` when it is not 0, and saves the window (1200x900 unless told otherwise) as PNG. Needs the dev extra
(Gradio and selenium).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import ganzoo
from ganzoo._io import write_bytes
from ganzoo.demo import build_demo, launch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="anything ganzoo.load accepts")
    parser.add_argument("out", type=Path, help="the PNG to write")
    parser.add_argument("--seed", type=int, default=0, help="the seed the page shows")
    parser.add_argument("--size", default="1200,900", help="window width,height in pixels")
    args = parser.parse_args()

    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    browser = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
    driver_path = shutil.which("chromedriver")
    if browser is None or driver_path is None:
        raise SystemExit("Chromium and chromedriver are needed: apt-get install chromium chromium-driver")
    gan = ganzoo.load(args.model)
    server = launch(build_demo(gan, name=args.model), port=0)
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 f"--window-size={args.size}", "--no-first-run", "--disable-extensions",
                 "--disable-background-networking"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver_path))
    try:
        driver.get(server.local_url)
        wait = WebDriverWait(driver, 60, poll_frequency=0.2)

        def images() -> list[str]:
            return [s for s in (i.get_attribute("src") for i in driver.find_elements(By.CSS_SELECTOR, "#samples img"))
                    if s]

        wait.until(lambda _: len(images()) > 0)
        slider = driver.find_element(By.CSS_SELECTOR, "#seed input[type=range]")
        for _ in range(args.seed):
            before = images()[0]
            slider.send_keys(Keys.ARROW_RIGHT)
            wait.until(lambda _, before=before: images() and images()[0] != before)
        time.sleep(1.0)  # let the last images finish drawing
        with tempfile.TemporaryDirectory() as tmp:
            shot = Path(tmp) / "shot.png"
            if not driver.save_screenshot(str(shot)):
                raise SystemExit("the browser took no screenshot")
            write_bytes(args.out, shot.read_bytes())
    finally:
        driver.quit()
        server.close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
