"""Driver of bench/family/upload: ROUNDS rounds of A B, one upload each, of FILE to the status server at BASE.

  upload_rounds.py BASE TOKEN FILE ROUNDS [USER PASSWORD CHROMIUM CHROMEDRIVER]

  A  tus   tuspy (the tus project's Python client) with chunk_size 5 MiB, as /upload.js sends: POST /api/uploads,
           then one PATCH per 5 MiB chunk.
  A2 tus-keepalive  the same 5 MiB PATCHes from a minimal tus client of a few lines (http.client, one keep-alive
           connection): what the server's per-chunk work costs, without tuspy's own (a new connection and a copy of
           each chunk in Python).
  B  curl  the anchor: POST /api/uploads with curl, then the whole file as ONE request,
           curl -X PATCH -T FILE (Upload-Offset: 0).
  C  page  with USER …: the real upload page (/upload.js) in Debian's headless Chromium driven by Selenium, logged
           in through the login form once. Its clock is the page's own (performance.now()): from the click on
           Upload until the file's note says "waiting to be stored" (every PATCH answered), and until the status
           line says "Done" (the page asks GET /api/uploads/<id> once a second, so "stored" carries up to 1 s of
           that polling).

Each upload's clock starts before its POST. "acknowledged": the last PATCH answered 204 (every byte fsynced and
its offset recorded). "stored": GET /api/uploads/<id> says state "stored" (hashed, deduplicated, copied into the
staging store, its row written), polled every 20 ms on a keep-alive connection. Before each upload the file's
first 16 bytes are made new, so that every upload is new content (stored as "staged", none a duplicate) while
the rest of the bytes stay in the page cache for both sides alike.

Prints one line per upload: "tool round bytes acknowledged_s stored_s outcome".
"""
import base64
import http.client
import json
import os
import subprocess
import sys
import time
import urllib.parse

from tusclient import client as tus

CHUNK = int(os.environ.get("BACKUP_UPLOAD_CHUNK_MIB", "64")) << 20  # the server's chunk size, which the page uses


def metadata_header(values):
    return ",".join(k + " " + base64.b64encode(v.encode()).decode() for k, v in values.items())


def wait_stored(base, token, location, started):
    parsed = urllib.parse.urlparse(base)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=600)
    deadline = time.monotonic() + 1800
    while time.monotonic() < deadline:
        connection.request("GET", location, headers={"Authorization": "Bearer " + token})
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            sys.exit("GET %s: %d %s" % (location, response.status, body[:300]))
        upload = json.loads(body)
        if upload.get("state") == "stored":
            return time.monotonic() - started, upload.get("outcome")
        if upload.get("error"):
            print("  (storing: %s)" % upload["error"], file=sys.stderr)
        time.sleep(0.02)
    sys.exit("%s was not stored within 30 minutes" % location)


def with_tuspy(base, token, path, meta):
    started = time.monotonic()
    uploader = tus.TusClient(base + "/api/uploads", headers={"Authorization": "Bearer " + token}).uploader(
        file_path=path, chunk_size=CHUNK, metadata=meta)
    uploader.upload()
    acknowledged = time.monotonic() - started
    if uploader.offset != os.path.getsize(path):
        sys.exit("tuspy stopped at offset %d" % uploader.offset)
    return started, acknowledged, urllib.parse.urlparse(uploader.url).path


def with_keepalive(base, token, path, meta):
    parsed = urllib.parse.urlparse(base)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=600)
    headers = {"Authorization": "Bearer " + token, "Tus-Resumable": "1.0.0"}
    size = os.path.getsize(path)
    started = time.monotonic()
    connection.request("POST", "/api/uploads", headers=dict(headers, **{
        "Upload-Length": str(size), "Upload-Metadata": metadata_header(meta)}))
    response = connection.getresponse()
    response.read()
    if response.status != 201:
        sys.exit("POST answered %d" % response.status)
    location = urllib.parse.urlparse(response.getheader("Location")).path
    with open(path, "rb") as handle:
        offset = 0
        while offset < size:
            chunk = handle.read(CHUNK)
            connection.request("PATCH", location, body=chunk, headers=dict(headers, **{
                "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"}))
            response = connection.getresponse()
            response.read()
            if response.status != 204:
                sys.exit("PATCH at %d answered %d" % (offset, response.status))
            offset += len(chunk)
    return started, time.monotonic() - started, location


def with_curl(base, token, path, meta):
    auth = "Authorization: Bearer " + token
    started = time.monotonic()
    created = subprocess.run([
        "curl", "-sS", "-f", "-o", "/dev/null", "-w", "%{redirect_url}\\n%header{location}", "-X", "POST",
        "-H", auth, "-H", "Tus-Resumable: 1.0.0", "-H", "Upload-Length: %d" % os.path.getsize(path),
        "-H", "Upload-Metadata: " + metadata_header(meta), base + "/api/uploads",
    ], check=True, capture_output=True, text=True).stdout.split("\n")
    location = urllib.parse.urlparse(created[-1].strip() or created[0].strip()).path
    # One request with the whole file. "Expect:" turns off curl's Expect: 100-continue for large bodies, which
    # would add a wait of up to a second that is curl's, not the server's.
    patched = subprocess.run([
        "curl", "-sS", "-f", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PATCH", "-T", path, "-H", auth,
        "-H", "Tus-Resumable: 1.0.0", "-H", "Upload-Offset: 0", "-H", "Content-Type: application/offset+octet-stream",
        "-H", "Expect:", base + location,
    ], check=True, capture_output=True, text=True).stdout
    acknowledged = time.monotonic() - started
    if patched != "204":
        sys.exit("curl PATCH answered %s" % patched)
    return started, acknowledged, location


# Marks the page's progress with its own clock: the note "waiting to be stored" and the status line "Done: …".
PAGE_CLICK = """
window.benchTimes = {start: performance.now(), acknowledged: null, done: null};
new MutationObserver(function () {
  var t = window.benchTimes, note = document.querySelector("#upload-list .file .small");
  if (t.acknowledged === null && note && note.textContent === "waiting to be stored") t.acknowledged = performance.now();
  if (t.done === null && document.getElementById("upload-status").textContent.indexOf("Done:") === 0) t.done = performance.now();
}).observe(document.body, {subtree: true, childList: true, characterData: true});
document.getElementById("upload-button").click();
"""


def start_page(base, user, password, chromium, chromedriver, profile):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    options = Options()
    options.binary_location = chromium
    for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--user-data-dir=" + profile]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    driver.set_page_load_timeout(60)
    driver.get(base + "/login")
    driver.find_element(By.NAME, "username").send_keys(user)
    driver.find_element(By.NAME, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "#login-form button").click()
    wait(lambda: driver.execute_script("return location.pathname") == "/account", 60, "the login")
    return driver


def wait(condition, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    sys.exit("timed out waiting for " + what)


def with_page(driver, base, path):
    from selenium.webdriver.common.by import By
    driver.get(base + "/upload")
    wait(lambda: driver.execute_script("return !!window.uploadStats"), 60, "the upload page")
    driver.find_element(By.ID, "source").send_keys("Upload bench")
    driver.find_element(By.ID, "files").send_keys(path)
    driver.execute_script(PAGE_CLICK)
    times = wait(lambda: driver.execute_script("var t = window.benchTimes; return t.done !== null && window.uploadStats.done ? t : null"),
                 1800, "the page's upload")
    status = driver.find_element(By.ID, "upload-status").text
    if not status.startswith("Done: 1 of 1") or times["acknowledged"] is None:
        sys.exit("the page's upload failed: " + status)
    outcome = driver.find_element(By.CSS_SELECTOR, "#upload-list .file").get_attribute("data-outcome")
    return (times["acknowledged"] - times["start"]) / 1000, (times["done"] - times["start"]) / 1000, outcome


def main():
    base, token, path, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    size = os.path.getsize(path)
    driver = start_page(base, *sys.argv[5:9], profile=path + ".profile") if len(sys.argv) > 8 else None
    tools = [("tus", with_tuspy), ("tus-keepalive", with_keepalive), ("curl", with_curl)] + ([("page", None)] if driver else [])
    try:
        for number in range(1, rounds + 1):
            for tool, upload in tools:
                with open(path, "r+b") as handle:
                    handle.write(os.urandom(16))
                if upload is None:
                    acknowledged, stored, outcome = with_page(driver, base, path)
                else:
                    meta = {"source": "Upload bench", "path": "round-%d/%s.bin" % (number, tool)}
                    started, acknowledged, location = upload(base, token, path, meta)
                    stored, outcome = wait_stored(base, token, location, started)
                print("%s %d %d %.3f %.3f %s" % (tool, number, size, acknowledged, stored, outcome), flush=True)
    finally:
        if driver:
            driver.quit()


if __name__ == "__main__":
    main()
