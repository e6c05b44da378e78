"""The README's screenshot of the web viewer (docs/viewer.png), made from a real server and a real browser.

Starts `sgpa serve`, asks the shipped oracle LFM2-Audio model "Which colour was mentioned?" about
data_samples/slt_task_0000.wav with a sampled estimator (so the bars carry 95 % intervals), opens the viewer on the
job in headless Chromium, hovers the answer word and saves the page.

    .venv/bin/python scripts/viewer_screenshot.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data_samples" / "slt_task_0000"


def main() -> None:
    import httpx
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from sgpa.service.process import headless_chromium, start_server

    with tempfile.TemporaryDirectory() as folder:
        server = start_server(Path(folder) / "data")
        try:
            with httpx.Client(base_url=server.url, timeout=120) as client:
                job = client.post("/v1/explanations", files={"audio": ("slt_task_0000.wav", SAMPLE.with_suffix(
                    ".wav").read_bytes())}, data={"transcript": SAMPLE.with_suffix(".txt").read_text().strip(),
                    "model": "sgpa-lfm2-oracle", "prompt": "Which colour was mentioned?",
                    "estimator": "kernel", "budget": "24"}).json()
                while client.get(f"/v1/explanations/{job['id']}").json()["status"] in ("queued", "running"):
                    time.sleep(0.3)
            driver = headless_chromium(1300, 1400)
            try:
                driver.get(f"{server.url}/#job={job['id']}")
                WebDriverWait(driver, 120).until(lambda d: d.execute_script("return window.sgpaViewer.ready"))
                spans = driver.find_elements(By.CSS_SELECTOR, "#spans .span")
                ActionChains(driver).move_to_element(spans[-1]).perform()
                output = ROOT / "docs" / "viewer.png"
                output.parent.mkdir(exist_ok=True)
                driver.save_screenshot(str(output))
                print(output, file=sys.stderr)
            finally:
                driver.quit()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
