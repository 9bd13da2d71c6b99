"""A real browser (Debian's chromium driven by selenium) opens the studio, drags a slider and sees the
result change. Skips only when chromium or its driver is absent (CI installs both in .ci/run)."""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from media_helpers import ffmpeg  # tests/media_helpers.py
from PIL import Image

CHROMIUM = os.environ.get("GDPW_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("GDPW_CHROMEDRIVER", "/usr/bin/chromedriver")
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1440,1000",
]


@pytest.fixture(scope="module")
def browser():
    if not (Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()):
        pytest.skip(f"chromium not installed ({CHROMIUM}, {CHROMEDRIVER}); .ci/run installs it with apt")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="gdpw-chromium-")
    camera = _fake_camera(Path(profile) / "camera.y4m")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS + [
        f"--user-data-dir={profile}",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={camera}",
    ]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _fake_camera(path: Path) -> Path:
    """A y4m file Chromium plays as its webcam: 3 s of a sample talking head, or without samples the embedded
    portrait held still (a face either way)."""
    from core.assets import samples_dir

    root = samples_dir()
    clip = root / "videos" / "samples__source_video__video__KristiNoem.mp4" if root is not None else None
    if clip is not None and clip.is_file():
        ffmpeg("-i", str(clip), "-t", "3", "-vf", "scale=320:240", "-pix_fmt", "yuv420p", str(path))
        return path
    from PIL import Image

    from core.io.examples import default_portrait

    still = path.with_name("portrait.png")
    Image.fromarray(default_portrait()).save(still)
    ffmpeg(
        "-loop",
        "1",
        "-framerate",
        "25",
        "-i",
        str(still),
        "-t",
        "3",
        "-vf",
        "scale=240:240,pad=320:240:40:0",
        "-pix_fmt",
        "yuv420p",
        str(path),
    )
    return path


def _wait(predicate, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _result_src(driver) -> str | None:
    from selenium.webdriver.common.by import By

    imgs = driver.find_elements(By.CSS_SELECTOR, "#gdpw-result img")
    return imgs[0].get_attribute("src") if imgs else None


def _element_pixels(element) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(element.screenshot_as_png)).convert("RGB")).astype(int)


def _screenshot(driver, shot: Path) -> Path:
    """Save the page to ``shot``, and a copy into ``$GDPW_SCREENSHOT_DIR`` when it is set (to look at)."""
    driver.save_screenshot(str(shot))
    keep = os.environ.get("GDPW_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / shot.name)
    return shot


def test_slider_drag_changes_the_result(studio_server, browser, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    driver = browser
    driver.get(studio_server.url)
    first = _wait(lambda: _result_src(driver), 120, "the first rendered result")
    status = driver.find_element(By.ID, "gdpw-status")
    _wait(lambda: "Ready" in status.text or "Rendered" in status.text, 60, "the start to finish")
    result = driver.find_element(By.CSS_SELECTOR, "#gdpw-result img")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", result)
    time.sleep(0.5)
    before = _element_pixels(result)

    slider = driver.find_element(By.CSS_SELECTOR, "#ctl-yaw input[type=range]")
    number = driver.find_element(By.CSS_SELECTOR, "#ctl-yaw input[type=number]")
    start_value = float(number.get_attribute("value"))
    width = slider.size["width"]
    ActionChains(driver).move_to_element(slider).click_and_hold().move_by_offset(width // 8, 0).pause(
        0.2
    ).move_by_offset(width // 8, 0).pause(0.2).release().perform()
    _wait(lambda: abs(float(number.get_attribute("value")) - start_value) > 5, 10, "the yaw slider to move")
    _wait(lambda: _result_src(driver) not in (None, first), 60, "a new result after the drag")
    _wait(lambda: "Rendered" in status.text, 30, "the render status")
    time.sleep(1.0)  # let the last (always_last) render land
    result = driver.find_element(By.CSS_SELECTOR, "#gdpw-result img")
    after = _element_pixels(result)

    print(f"screenshot: {_screenshot(driver, tmp_path / 'studio.png')}")

    assert before.shape == after.shape
    changed = np.abs(before - after).max(-1) > 24
    assert changed.mean() > 0.05, f"only {100 * changed.mean():.1f} % of the result's pixels changed"
    yaw = float(number.get_attribute("value"))
    assert yaw > start_value + 5


def test_bad_upload_shows_a_message_and_examples_load(studio_server, browser, tmp_path):
    from selenium.webdriver.common.by import By

    driver = browser
    driver.get(studio_server.url)
    _wait(lambda: _result_src(driver), 120, "the first rendered result")
    status = driver.find_element(By.ID, "gdpw-status")
    _wait(lambda: "Ready" in status.text, 60, "the start to finish")
    first = _result_src(driver)

    fake = tmp_path / "notes.jpg"
    fake.write_text("not a photo at all\n" * 10)
    upload = driver.find_element(By.CSS_SELECTOR, "#gdpw-source input[type=file]")
    upload.send_keys(str(fake))
    _wait(lambda: "not a readable image" in status.text, 60, "the message about the bad file")
    assert "notes.jpg" in status.text and "kept" in status.text
    assert _result_src(driver) == first  # the previous edit is still shown
    _wait(lambda: driver.find_elements(By.CSS_SELECTOR, "#gdpw-source img"), 10, "the source restored")

    thumbs = [t for t in driver.find_elements(By.CSS_SELECTOR, "#gdpw-examples button") if t.is_displayed()]
    if len(thumbs) < 2:
        pytest.skip("only the default example (samples absent)")
    thumbs[1].click()
    _wait(lambda: status.text.startswith("Loaded"), 90, "the example to load")
    _wait(lambda: _result_src(driver) != first, 30, "the example's result")


def _open_tab(driver, name: str) -> None:
    from selenium.webdriver.common.by import By

    tab = _wait(
        lambda: [t for t in driver.find_elements(By.CSS_SELECTOR, "button[role=tab]") if t.text.strip() == name],
        60,
        f"the {name} tab",
    )[0]
    tab.click()


def test_learned_engine_switch_and_its_pyramid(studio_server, browser, tmp_path):
    """With the shipped weights the Engine choice offers pwm; choosing it re-renders, and Inspect shows the
    flow of every pyramid level."""
    from selenium.webdriver.common.by import By

    driver = browser
    driver.get(studio_server.url)
    first = _wait(lambda: _result_src(driver), 120, "the first rendered result")
    status = driver.find_element(By.ID, "gdpw-status")
    _wait(lambda: "Ready" in status.text or "Rendered" in status.text, 60, "the start to finish")
    choice = _wait(
        lambda: [x for x in driver.find_elements(By.CSS_SELECTOR, "#gdpw-engine label") if x.text.strip() == "pwm"],
        30,
        "the pwm choice",
    )[0]
    choice.click()
    _wait(lambda: "Engine: pwm" in status.text or "could not start" in status.text, 120, "the engine switch")
    assert "Engine: pwm" in status.text, status.text
    _wait(lambda: _result_src(driver) not in (None, first), 60, "the learned engine's result")
    _open_tab(driver, "Inspect")
    levels = _wait(lambda: driver.find_elements(By.CSS_SELECTOR, "#gdpw-levels img"), 60, "the pyramid montage")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", levels[0])
    time.sleep(0.5)
    assert driver.execute_script("return arguments[0].naturalWidth", levels[0]) > 3 * 128
    _screenshot(driver, tmp_path / "studio_pwm.png")


def _open_video_tab_with(driver, url: str, clip) -> None:
    """Load the studio, wait for its first result, open the Video tab and upload ``clip``."""
    from selenium.webdriver.common.by import By

    driver.get(url)
    _wait(lambda: _result_src(driver), 120, "the first rendered result")
    _open_tab(driver, "Video")
    upload = _wait(lambda: driver.find_elements(By.CSS_SELECTOR, "#gdpw-vclip input[type=file]"), 30, "the clip input")
    upload[0].send_keys(str(clip))


def test_video_tab_previews_and_renders_a_clip(studio_server, browser, tmp_path):
    from selenium.webdriver.common.by import By

    clip = tmp_path / "clip.mp4"  # 0.5 s of the fake camera's talking head
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:duration=0.5",
        "-i",
        str(_fake_camera(tmp_path / "cam.y4m")),
        "-t",
        "0.5",
        "-map",
        "1:v",
        "-map",
        "0:a",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        str(clip),
    )
    driver = browser
    _open_video_tab_with(driver, studio_server.url, clip)
    _wait(lambda: driver.find_elements(By.CSS_SELECTOR, "#gdpw-vclip video"), 60, "the uploaded clip")
    number = driver.find_element(By.CSS_SELECTOR, "#vctl-yaw input[type=number]")
    number.clear()
    number.send_keys("12\n")
    summary = driver.find_element(By.ID, "gdpw-vsummary")
    driver.find_element(By.ID, "gdpw-vpreview").click()
    _wait(lambda: "Preview" in summary.text or "⚠" in summary.text, 120, "the first-frame preview")
    assert "yaw" in summary.text, summary.text
    assert driver.find_elements(By.CSS_SELECTOR, "#gdpw-vpreview-img img")
    driver.find_element(By.ID, "gdpw-vrender").click()
    _wait(lambda: "Edited" in summary.text or "⚠" in summary.text, 240, "the rendered video")
    assert "Edited" in summary.text and "audio kept" in summary.text, summary.text
    video = _wait(lambda: driver.find_elements(By.CSS_SELECTOR, "#gdpw-vresult video"), 30, "the result video")
    assert video[0].get_attribute("src")


def test_webcam_tab_streams_the_fake_camera(studio_server, browser):
    from selenium.webdriver.common.by import By

    driver = browser
    driver.get(studio_server.url)
    _wait(lambda: _result_src(driver), 120, "the first rendered result")
    _open_tab(driver, "Webcam")
    access = _wait(
        lambda: [
            b
            for b in driver.find_elements(By.CSS_SELECTOR, "#gdpw-webcam button")
            if "Access" in b.text and b.is_displayed()
        ],
        30,
        "the webcam button",
    )
    access[0].click()
    record = _wait(
        lambda: [
            b
            for b in driver.find_elements(By.CSS_SELECTOR, "#gdpw-webcam button")
            if b.text.strip() == "Record" and b.is_displayed()
        ],
        30,
        "the record button",
    )
    record[0].click()
    stats = driver.find_element(By.ID, "gdpw-live-stats")
    _wait(lambda: "ms per frame" in stats.text, 120, "streamed frames to come back")
    out = _wait(lambda: driver.find_elements(By.CSS_SELECTOR, "#gdpw-live-out img"), 30, "the driven portrait")
    first = out[0].get_attribute("src")
    _wait(
        lambda: (driver.find_elements(By.CSS_SELECTOR, "#gdpw-live-out img") or out)[0].get_attribute("src") != first,
        60,
        "a second streamed frame",
    )


def _offset_in_image(driver, img, x: float, y: float) -> tuple[int, int]:
    """Selenium offset (from the element's centre) of the image pixel (x, y), the image shown scaled to fit
    its box (object-fit: contain, as Gradio maps a click back to pixels)."""
    left, top, w, h, nw, nh = driver.execute_script(
        "const r = arguments[0].getBoundingClientRect();"
        "return [r.left, r.top, r.width, r.height, arguments[0].naturalWidth, arguments[0].naturalHeight];",
        img,
    )
    scale = max(nw / w, nh / h)
    ox, oy = (w - nw / scale) / 2, (h - nh / scale) / 2
    return round(ox + x / scale - w / 2), round(oy + y / scale - h / 2)


def test_video_tab_click_picks_the_second_face(studio_server, browser, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    from core.fit.api import face_boxes
    from core.io.examples import default_portrait
    from core.io.video import write_video

    portrait = default_portrait()
    x0, y0, x1, y1 = face_boxes(portrait)[0]  # a square around its face, so that the small copy is found too
    cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, 0.9 * max(x1 - x0, y1 - y0)
    face = Image.fromarray(portrait).convert("RGB").crop((cx - half, cy - half, cx + half, cy + half))
    canvas = np.full((256, 560, 3), 100, np.uint8)  # a large face on the left, a small one on the right
    canvas[:, :256] = np.asarray(face.resize((256, 256)))
    canvas[28:228, 340:540] = np.asarray(face.resize((200, 200)))
    clip = write_video(tmp_path / "two.mp4", [canvas] * 5, 10.0)
    driver = browser
    _open_video_tab_with(driver, studio_server.url, clip)
    summary = driver.find_element(By.ID, "gdpw-vsummary")
    _wait(lambda: "Face 1 of 2" in summary.text or "⚠" in summary.text, 120, "the first frame's faces")
    assert "Face 1 of 2" in summary.text, summary.text
    img = _wait(
        lambda: [
            i
            for i in driver.find_elements(By.CSS_SELECTOR, "#gdpw-vpreview-img img")
            if driver.execute_script("return arguments[0].naturalWidth", i) == 560
        ],
        30,
        "the first frame shown",
    )[0]
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", img)
    time.sleep(0.5)
    ActionChains(driver).move_to_element_with_offset(img, *_offset_in_image(driver, img, 440, 128)).click().perform()
    _wait(lambda: "Face 2 of 2" in summary.text or "⚠" in summary.text, 60, "the second face to be chosen")
    assert "Face 2 of 2" in summary.text, summary.text
    number = driver.find_element(By.CSS_SELECTOR, "#gdpw-vface input")
    assert float(number.get_attribute("value")) == 2
