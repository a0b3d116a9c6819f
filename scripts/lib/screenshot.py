#!/usr/bin/env python3
"""Screenshots of the family pages in headless Chromium, over the DevTools protocol on a pipe (standard library only).

    screenshot.py CHROMIUM BASE_URL OUT_DIR USER PASSWORD NAME=PATH[@WIDTHxHEIGHT] ...

Takes NAME.png of each PATH (logged in as USER through the real login form; `login` is taken before logging in).
"""
import base64, json, os, subprocess, sys, tempfile, time

chromium, base, out, user, password = sys.argv[1:6]
shots = sys.argv[6:]
profile = tempfile.mkdtemp(prefix="shots-")
to_chrome_r, to_chrome_w = os.pipe()
from_chrome_r, from_chrome_w = os.pipe()


def child_fds():
    a, b = os.dup(to_chrome_r), os.dup(from_chrome_w)
    os.dup2(a, 3)
    os.dup2(b, 4)


proc = subprocess.Popen([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                         "--hide-scrollbars", "--remote-debugging-pipe", "--user-data-dir=" + profile, "about:blank"],
                        close_fds=False, preexec_fn=child_fds, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
os.close(to_chrome_r)
os.close(from_chrome_w)
buffer = b""
next_id = 0


def send(method, params=None, session=None):
    global buffer, next_id
    next_id += 1
    message = {"id": next_id, "method": method, "params": params or {}}
    if session:
        message["sessionId"] = session
    os.write(to_chrome_w, json.dumps(message).encode() + b"\0")
    while True:
        while b"\0" not in buffer:
            chunk = os.read(from_chrome_r, 1 << 20)
            if not chunk:
                raise SystemExit("chromium closed the pipe")
            buffer += chunk
        raw, buffer = buffer.split(b"\0", 1)
        answer = json.loads(raw)
        if answer.get("id") == next_id:
            if "error" in answer:
                raise SystemExit(f"{method}: {answer['error']}")
            return answer["result"]


def evaluate(session, expression):
    return send("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session)["result"].get("value")


def wait_loaded(session, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if evaluate(session, "document.readyState === 'complete'"):
                return
        except SystemExit:
            pass
        time.sleep(0.2)
    raise SystemExit("a page did not load")


def shoot(session, name, size):
    width, height = size
    send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600}, session)
    time.sleep(0.3)
    data = send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": False}, session)["data"]
    path = os.path.join(out, name + ".png")
    with open(path, "wb") as file:
        file.write(base64.b64decode(data))
    print("wrote " + path)


def parse(spec):
    name, rest = spec.split("=", 1)
    size = (1100, 800)
    if "@" in rest:
        rest, dims = rest.rsplit("@", 1)
        size = tuple(int(part) for part in dims.split("x"))
    return name, rest, size


try:
    target = send("Target.createTarget", {"url": base + "/login"})["targetId"]
    session = send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    wait_loaded(session)
    for spec in shots:
        name, path, size = parse(spec)
        if path == "/login":
            shoot(session, name, size)
    evaluate(session, "document.querySelector('input[name=username]').value = " + json.dumps(user) + ";"
                      "document.querySelector('input[name=password]').value = " + json.dumps(password) + ";"
                      "document.querySelector('#login-form button').click(); true")
    time.sleep(1)
    wait_loaded(session)
    if evaluate(session, "location.pathname") != "/account":
        raise SystemExit("the login did not succeed")
    for spec in shots:
        name, path, size = parse(spec)
        if path == "/login":
            continue
        send("Page.navigate", {"url": base + path}, session)
        time.sleep(0.5)
        wait_loaded(session)
        shoot(session, name, size)
finally:
    proc.kill()
    proc.wait()
