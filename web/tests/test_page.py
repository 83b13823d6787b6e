"""The verification page in a real browser: Debian's headless Chromium driven by Selenium, against
a two-region testnet of real nodes (tongban-testnet up). Each path a counter uses: the camera (a
fake camera showing a QR code this test issued), a keyboard-wedge scanner's input, a dropped file,
offline checking after the first load, a revoked certificate, presentation codes resolved in
another region, expired and used up. Screenshots are kept as artefacts.

Environment: TONGBAN_TESTNET and TONGBAN_VERIFY (the binaries), CHROMIUM and CHROMEDRIVER (default
/usr/bin/chromium, /usr/bin/chromedriver), TONGBAN_ARTIFACTS (default target/browser-artifacts).
"""

from __future__ import annotations

import base64
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

TESTNET = os.environ.get("TONGBAN_TESTNET", "target/debug/tongban-testnet")
VERIFY = os.environ.get("TONGBAN_VERIFY", "target/debug/tongban-verify")
ARTIFACTS = pathlib.Path(os.environ.get("TONGBAN_ARTIFACTS", "target/browser-artifacts"))
WAIT = 30


def call(method: str, url: str, token: str | None = None, body: dict | None = None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, json.loads(reply.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


class Net:
    def __init__(self, directory: pathlib.Path):
        self.dir = directory
        self.state = json.loads((directory / "testnet.json").read_text())
        self.nodes = {n["region"]: n for n in self.state["nodes"]}
        # What the tests did to Fuyang's log, counted here as they do it, for the report's test.
        self.acts = {"issued": 0, "revoked": 0, "presentations_made": 0,
                     "presentations_resolved": 0, "PRESENTATION_USED_UP": 0,
                     "PRESENTATION_EXPIRED": 0}
        self.started = time.time()

    def api(self, region: str) -> str:
        return self.nodes[region]["api"]

    def agency(self, region: str, role: str) -> dict:
        return next(a for a in self.nodes[region]["agencies"] if a["role"] == role)

    def issue(self, serial: str) -> tuple[str, bytes]:
        issuer = self.agency("341200", "issuer")
        status, answer = call("POST", self.api("341200") + "/v1/certificates", issuer["token"], {
            "seal": issuer["seal"], "type_code": "11100000000013338W001", "serial": serial,
            "type_name": "营业执照", "level": "A",
            "holder": {"name": "阜阳市通办示范科技有限公司", "id_type": "USCC",
                       "id_number": "91341200MA2T00001L"},
            "licence": {"capital": 1000000, "scope": "软件开发"}})
        assert status == 201, answer
        self.acts["issued"] += 1
        return answer["id"], base64.b64decode(answer["certificate"])

    def qr(self, certificate: bytes, name: str, out: str) -> pathlib.Path:
        source = self.dir / f"{name}.tbc"
        source.write_bytes(certificate)
        target = self.dir / f"{name}.{out}"
        subprocess.run([VERIFY, "qr", "encode", str(source), "--disclose",
                        "holder.name,holder.id_number", "--out", str(target), "--scale", "4"],
                       check=True, capture_output=True)
        return target

    def present(self, cert_id: str, **terms) -> str:
        app = self.agency("341200", "approval")
        status, answer = call("POST", self.api("341200") + "/v1/presentations", app["token"],
                              {"id": cert_id, "fields": ["holder.name"], **terms})
        assert status == 201, answer
        self.acts["presentations_made"] += 1
        return answer["code"]


def y4m(png: pathlib.Path, out: pathlib.Path) -> pathlib.Path:
    """A few frames of 640x480 video showing the code, as Chromium's fake camera plays them."""
    width, height = 640, 480
    code = Image.open(png).convert("L")
    scale = min((height - 40) / code.height, 1.0)
    code = code.resize((int(code.width * scale), int(code.height * scale)), Image.NEAREST)
    frame = Image.new("L", (width, height), 255)
    frame.paste(code, ((width - code.width) // 2, (height - code.height) // 2))
    luma = frame.tobytes()
    chroma = bytes([128]) * (width // 2 * height // 2)
    with out.open("wb") as f:
        f.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(10):
            f.write(b"FRAME\n" + luma + chroma + chroma)
    return out


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    directory = tmp_path_factory.mktemp("testnet")
    subprocess.run([TESTNET, "up", "--regions", "2", "--dir", str(directory)], check=True,
                   capture_output=True, timeout=300)
    try:
        yield Net(directory)
    finally:
        subprocess.run([TESTNET, "down", "--dir", str(directory)], capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def licence(net):
    """A valid licence of Fuyang, its QR text and picture."""
    cert_id, certificate = net.issue("2026000001")
    text = net.qr(certificate, "licence", "txt").read_text().strip()
    png = net.qr(certificate, "licence", "png")
    return {"id": cert_id, "certificate": certificate, "text": text, "png": png}


@pytest.fixture(scope="module")
def browser(net, licence, tmp_path_factory):
    video = y4m(licence["png"], tmp_path_factory.mktemp("camera") / "code.y4m")
    options = Options()
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for flag in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,1500",
                 "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                 f"--use-file-for-fake-video-capture={video}", "--lang=zh-CN"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options,
                              service=Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


def open_page(driver, net, region="370100"):
    driver.get(net.api(region) + "/verify/")
    WebDriverWait(driver, WAIT).until(
        lambda d: d.execute_script("return document.body.dataset.ready === 'true'"))


def verdict(driver, expect_class: str) -> str:
    element = driver.find_element(By.ID, "verdict")
    WebDriverWait(driver, WAIT).until(lambda d: expect_class in element.get_attribute("class").split())
    return driver.find_element(By.ID, "result").text


def shot(driver, name: str):
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def scan(driver, text: str):
    box = driver.find_element(By.ID, "scan-input")
    box.clear()
    # A keyboard-wedge scanner types the code and ends with Enter.
    box.send_keys(text + Keys.ENTER)


def console_errors(driver) -> list:
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"
            and "favicon" not in e["message"]]


def test_a_scanner_types_the_qr_text_and_the_page_verifies_it_offline(browser, net, licence):
    open_page(browser, net)
    assert "核验数据" in browser.page_source
    data = browser.find_element(By.ID, "data").text
    assert "341200" in data and "370100" in data, data
    scan(browser, licence["text"])
    result = verdict(browser, "valid")
    assert "有效" in result and "阜阳市通办示范科技有限公司" in result, result
    assert "本机离线核验" in result
    assert licence["id"] in result
    shot(browser, "scanner-valid")
    # A figure, not a check: how long the page's own verification of this text takes (median of
    # 5 rounds of 100), kept beside the screenshots.
    rounds = browser.execute_script("""
        const text = new TextEncoder().encode(arguments[0]);
        const rounds = [];
        for (let r = 0; r < 5; r += 1) {
            const t = performance.now();
            for (let i = 0; i < 100; i += 1) core.call('verify_text', text, Date.now() / 1000);
            rounds.push((performance.now() - t) / 100);
        }
        return rounds.sort((a, b) => a - b);
    """, licence["text"])
    (ARTIFACTS / "figures.json").write_text(json.dumps(
        {"verify_text_ms_median": rounds[2], "rounds_ms": rounds}, indent=1))
    # The English view of the same verdict.
    browser.find_element(By.ID, "lang").click()
    assert "VALID" in verdict(browser, "valid")
    shot(browser, "scanner-valid-en")
    browser.find_element(By.ID, "lang").click()
    assert console_errors(browser) == []


def test_the_camera_reads_the_code(browser, net, licence):
    open_page(browser, net)
    browser.find_element(By.ID, "camera").click()
    result = verdict(browser, "valid")
    assert "阜阳市通办示范科技有限公司" in result, result
    shot(browser, "camera-valid")


def test_a_dropped_certificate_file_and_a_dropped_picture_verify(browser, net, licence):
    open_page(browser, net)
    drop = """
        const [name, type, b64] = arguments;
        const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], name, {type}));
        document.getElementById('drop').dispatchEvent(
            new DragEvent('drop', {dataTransfer: transfer, bubbles: true, cancelable: true}));
    """
    browser.execute_script(drop, "licence.tbc", "application/octet-stream",
                           base64.b64encode(licence["certificate"]).decode())
    result = verdict(browser, "valid")
    # The file holds every field: the page shows them all.
    assert "软件开发" in result or "licence.scope" in result, result
    browser.execute_script("document.getElementById('verdict').className = 'verdict none'")
    browser.execute_script(drop, "code.png", "image/png",
                           base64.b64encode(licence["png"].read_bytes()).decode())
    assert "阜阳市通办示范科技有限公司" in verdict(browser, "valid")
    shot(browser, "drop-valid")


def test_a_revoked_licence_is_refused_with_what_to_do(browser, net):
    cert_id, certificate = net.issue("2026000002")
    issuer = net.agency("341200", "issuer")
    status, answer = call("POST", net.api("341200") + f"/v1/certificates/{cert_id}/status",
                          issuer["token"], {"operation": "revoke", "reason": "吊销营业执照"})
    assert status == 200, answer
    net.acts["revoked"] += 1
    text = net.qr(certificate, "revoked", "txt").read_text().strip()
    # Jinan's node fetches Fuyang's new list within seconds; the page reads it when it loads.
    deadline = time.time() + WAIT
    while True:
        open_page(browser, net)
        scan(browser, text)
        result = settled(browser)
        if "STATUS_REVOKED" in result or time.time() > deadline:
            break
        time.sleep(1)
    assert "STATUS_REVOKED" in result and "不予受理" in result, result
    assert "invalid" in browser.find_element(By.ID, "verdict").get_attribute("class")
    shot(browser, "revoked")


def settled(driver) -> str:
    """The result once the page has one."""
    WebDriverWait(driver, WAIT).until(
        lambda d: "none" not in d.find_element(By.ID, "verdict").get_attribute("class").split())
    return driver.find_element(By.ID, "result").text


def test_offline_after_the_first_load(browser, net, licence):
    open_page(browser, net)
    # The service worker holds the page's files once it is active.
    WebDriverWait(browser, WAIT).until(
        lambda d: d.execute_script("return navigator.serviceWorker.controller !== null"))
    browser.set_network_conditions(offline=True, latency=0, download_throughput=0, upload_throughput=0)
    try:
        browser.execute_script("performance.clearResourceTimings()")
        browser.refresh()
        WebDriverWait(browser, WAIT).until(
            lambda d: d.execute_script("return document.body.dataset.ready === 'true'"))
        data = browser.find_element(By.ID, "data").text
        assert "离线" in data, data
        scan(browser, licence["text"])
        assert "阜阳市通办示范科技有限公司" in verdict(browser, "valid")
        # Nothing was sent to verify it: no request to the node's verify or resolve endpoints.
        sent = browser.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)")
        assert not [u for u in sent if "/v1/verify" in u or "/v1/presentations" in u], sent
        shot(browser, "offline-valid")
    finally:
        browser.set_network_conditions(offline=False, latency=0, download_throughput=500000,
                                       upload_throughput=500000)
        browser.delete_network_conditions()


def test_presentation_codes_resolved_in_another_region(browser, net, licence):
    open_page(browser, net, "370100")
    counter = net.agency("370100", "approval")
    browser.find_element(By.CSS_SELECTOR, "#staff summary").click()
    token = browser.find_element(By.ID, "token")
    token.send_keys(counter["token"])
    token.send_keys(Keys.TAB)
    code = net.present(licence["id"])
    scan(browser, code)
    result = verdict(browser, "valid")
    assert "阜阳市通办示范科技有限公司" in result and counter["name"] in result, result
    assert "亮证码" in result, result
    net.acts["presentations_resolved"] += 1
    shot(browser, "presentation-valid")
    # Opened from a code's QR link (`/verify/#TBP1:…`, a node with public_url): resolved at once.
    linked = net.present(licence["id"])
    browser.execute_script("document.getElementById('verdict').className = 'verdict none'")
    browser.get(net.api("370100") + f"/verify/#TBP1:{linked}")
    WebDriverWait(browser, WAIT).until(
        lambda d: d.execute_script("return document.body.dataset.ready === 'true'"))
    result = verdict(browser, "valid")
    assert "阜阳市通办示范科技有限公司" in result and "亮证码" in result, result
    href = browser.execute_script("return location.href")
    assert "#" not in href, f"the code is taken off the address: {href}"
    net.acts["presentations_resolved"] += 1
    # Used once: the second scan is refused.
    browser.execute_script("document.getElementById('verdict').className = 'verdict none'")
    time.sleep(3.1)  # the page takes the same text within three seconds as one scan
    scan(browser, code)
    result = verdict(browser, "invalid")
    assert "PRESENTATION_USED_UP" in result and "亮证码已被使用" in result, result
    net.acts["PRESENTATION_USED_UP"] += 1
    shot(browser, "presentation-used-up")
    # A code that lived ten seconds.
    short = net.present(licence["id"], lifetime_seconds=10)
    time.sleep(11)
    scan(browser, short)
    result = verdict(browser, "invalid")
    assert "PRESENTATION_EXPIRED" in result and "亮证码已过期" in result, result
    net.acts["PRESENTATION_EXPIRED"] += 1
    shot(browser, "presentation-expired")


def test_online_mode_asks_the_node(browser, net, licence):
    open_page(browser, net)
    browser.find_element(By.ID, "online").click()
    scan(browser, licence["text"])
    result = verdict(browser, "valid")
    assert "本节点联网核验" in result and "阜阳市通办示范科技有限公司" in result, result
    sent = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert [u for u in sent if u.endswith("/v1/verify")], sent
    shot(browser, "online-valid")


def test_bulk_mode_keeps_a_log_of_every_scan(browser, net, licence):
    open_page(browser, net)
    browser.find_element(By.ID, "bulk").click()
    scan(browser, licence["text"])
    verdict(browser, "valid")
    time.sleep(0.2)
    scan(browser, "TB1:NOT-A-CODE")
    verdict(browser, "invalid")
    rows = browser.find_elements(By.CSS_SELECTOR, "#batch-rows tr")
    assert len(rows) == 2
    assert "有效 1 件，无效 1 件" in browser.find_element(By.ID, "batch-counts").text
    shot(browser, "bulk")


def test_the_static_bundle_verifies_with_data_fetched_beside_it(browser, net, licence, tmp_path):
    """web/dist on a plain web server, with the data `tongban-verify fetch` wrote beside it."""
    site = tmp_path / "site" / "verify"
    shutil.copytree(pathlib.Path(__file__).resolve().parent.parent / "dist", site)
    subprocess.run([VERIFY, "fetch", net.api("370100"), str(site / "data")], check=True,
                   capture_output=True, timeout=60)
    server = subprocess.Popen([sys.executable, "-m", "http.server", "0", "--bind", "127.0.0.1",
                               "--directory", str(tmp_path / "site")], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        line = server.stdout.readline()
        port = int(line.split("port ")[1].split(" ")[0])
        browser.get(f"http://127.0.0.1:{port}/verify/")
        WebDriverWait(browser, WAIT).until(
            lambda d: d.execute_script("return document.body.dataset.ready === 'true'"))
        data = browser.find_element(By.ID, "data").text
        assert "341200" in data and "状态列表" in data, data
        scan(browser, licence["text"])
        assert "阜阳市通办示范科技有限公司" in verdict(browser, "valid")
        shot(browser, "static-bundle-valid")
    finally:
        server.terminate()
        server.wait(timeout=10)


CONTRAST = """
    // WCAG 2.1 contrast of each element's text against its nearest opaque background.
    const rgb = (c) => c.match(/[\\d.]+/g).map(Number);
    const lum = ([r, g, b]) => {
        const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
        return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const back = (el) => {
        for (; el; el = el.parentElement) {
            const c = rgb(getComputedStyle(el).backgroundColor);
            if (c.length < 4 || c[3] > 0) return c;
        }
        return [255, 255, 255];
    };
    return arguments[0].map((sel) => {
        const el = document.querySelector(sel);
        const a = lum(rgb(getComputedStyle(el).color)), b = lum(back(el));
        return [sel, (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)];
    });
"""


def test_text_has_aa_contrast_and_every_control_is_reachable_by_keyboard(browser, net, licence):
    open_page(browser, net)
    scan(browser, licence["text"])
    verdict(browser, "valid")
    elements = ["h1", "#data-state", "label[for=scan-input]", "#check", "#camera", "#drop-help",
                "#verdict", "#details dt", "#details dd", "footer p"]
    for selector, ratio in browser.execute_script(CONTRAST, elements):
        assert ratio >= 4.5, f"{selector}: contrast {ratio:.2f}"
    # Tab from the top reaches every control, in order, with nothing unreachable.
    browser.find_element(By.TAG_NAME, "body").click()
    reached = set()
    for _ in range(30):
        # Keys go to whatever has the focus (a file input would take them as a path).
        ActionChains(browser).send_keys(Keys.TAB).perform()
        reached.add(browser.switch_to.active_element.get_attribute("id")
                    or browser.switch_to.active_element.tag_name)
    for control in ["lang", "refresh", "scan-input", "check", "camera", "file", "drop", "bulk", "online"]:
        assert control in reached, (control, reached)


def test_the_page_has_a_content_security_policy_and_labels(net):
    with urllib.request.urlopen(net.api("370100") + "/verify/", timeout=30) as reply:
        csp = reply.headers["Content-Security-Policy"]
        html = reply.read().decode()
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp and "frame-ancestors 'none'" in csp
    for control in ["scan-input", "token", "purpose", "case"]:
        assert f'for="{control}"' in html, control


def test_the_month_report_counts_what_the_tests_did_and_opens_in_the_browser(browser, net, tmp_path):
    """Runs last: `tongban-verify audit report` of both nodes for this month (China Standard
    Time), its figures equal to the acts this module drove, its HTML opened in Chromium."""
    month = time.strftime("%Y-%m", time.gmtime(time.time() + 8 * 3600))
    if time.strftime("%Y-%m", time.gmtime(net.started + 8 * 3600)) != month:
        pytest.skip("the month turned while the tests ran")
    sources = [net.api("341200"), net.api("370100")]
    out = subprocess.run([VERIFY, "audit", "report", *sources, "--period", month],
                         capture_output=True, timeout=120)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    fuyang = next(r for r in report["regions"] if r["region"] == "341200")["figures"]["period"]
    acts = net.acts
    assert fuyang["issued"] == acts["issued"], (fuyang, acts)
    assert fuyang["status_changes"].get("revoked", 0) == acts["revoked"], fuyang
    assert fuyang["presentations_made"] == acts["presentations_made"], (fuyang, acts)
    assert fuyang["presentations_resolved"] == acts["presentations_resolved"], (fuyang, acts)
    assert fuyang["presentations_resolved_cross_region"] == acts["presentations_resolved"]
    for code in ["PRESENTATION_USED_UP", "PRESENTATION_EXPIRED"]:
        assert fuyang["refusals"].get(code, 0) == acts[code], (code, fuyang)
    jinan = next(r for r in report["regions"] if r["region"] == "370100")
    assert jinan["figures"]["period"]["copies_received_cross_region"] == acts["presentations_resolved"]
    assert jinan["log"]["checkpoint"] is not None, jinan["log"]
    # Fuyang's own page shows the same month, counted live by the node with the same code.
    open_page(browser, net, "341200")
    issued = browser.find_element(By.CSS_SELECTOR, "#month-figures dd[data-figure=issued]")
    assert issued.text == str(acts["issued"]), issued.text
    resolved = browser.find_element(By.CSS_SELECTOR, "#month-figures dd[data-figure=presentations_resolved]")
    assert resolved.text == str(acts["presentations_resolved"]), resolved.text
    browser.execute_script("document.getElementById('month').scrollIntoView()")
    shot(browser, "month-on-the-page")
    html = tmp_path / "report.html"
    out = subprocess.run([VERIFY, "audit", "report", *sources, "--period", month, "--format",
                          "html", "--out", str(html)], capture_output=True, timeout=120)
    assert out.returncode == 0, out.stderr
    browser.get_log("browser")  # what earlier pages logged (the offline test's refused fetches)
    browser.get(html.as_uri())
    bars = browser.find_elements(By.CSS_SELECTOR, "svg rect.bar")
    assert len(bars) == 24, len(bars)
    assert any(float(b.get_attribute("height")) > 0 for b in bars)
    assert console_errors(browser) == []
    browser.set_window_size(1100, 2400)
    shot(browser, "report")
    browser.set_window_size(1100, 1500)
