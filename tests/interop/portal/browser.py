#!/usr/bin/env python3
"""The web portal in a real browser: headless Chromium driven by Selenium signs in
with a password, creates an app password and reads it from the page; Python's
imaplib and smtplib then log in with it. Screenshots of the main pages are saved.

Needs Debian `chromium` and `chromium-driver`, and `selenium` from
tests/interop/requirements.txt. The account must exist and be an administrator
(the Rust test provisions it with the CLI).
"""

import argparse
import functools
import imaplib
import os
import smtplib
import sys
import tempfile
import time
import urllib.request
from email.message import EmailMessage

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait


def check(condition, what):
    if not condition:
        print(f"FAILED: {what}")
        sys.exit(1)
    print(f"ok: {what}")


def wait_http(base):
    deadline = time.time() + 30
    while True:
        try:
            urllib.request.urlopen(base + "/healthz", timeout=2)
            return
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.1)


def browser(profile_dir):
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for flag in [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile_dir}",
        "--window-size=1280,900",
    ]:
        options.add_argument(flag)
    service = Service(executable_path=os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    return webdriver.Chrome(service=service, options=options)


def screenshot(driver, name, directory):
    """Saves the whole page, not only the window, as DIRECTORY/NAME.png."""
    path = os.path.join(directory, f"{name}.png")
    height = driver.execute_script("return document.documentElement.scrollHeight")
    width = driver.get_window_size()["width"]
    driver.set_window_size(width, max(height + 120, 600))
    driver.save_screenshot(path)
    print(f"ok: screenshot {path}")


def settle(driver, condition, seconds=20):
    """Waits until a page after a form post shows `condition`: clicking returns
    before the next page has loaded. The caller's checks say what went wrong."""
    try:
        WebDriverWait(driver, seconds).until(lambda d: condition(d))
    except Exception:
        pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--http-port", type=int, required=True)
    ap.add_argument("--imap-port", type=int, required=True)
    ap.add_argument("--submission-port", type=int, required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--screenshots", required=True)
    args = ap.parse_args()
    base = f"http://127.0.0.1:{args.http_port}"
    os.makedirs(args.screenshots, exist_ok=True)
    wait_http(base)

    shot = functools.partial(screenshot, directory=args.screenshots)

    with tempfile.TemporaryDirectory() as profile:
        driver = browser(profile)
        try:
            driver.get(base + "/portal/")
            check(driver.current_url.endswith("/portal/sign-in"), "an anonymous visitor is sent to sign in")
            shot(driver, "01-sign-in")
            # Keyboard and labels: the fields are reached through their labels.
            address = driver.find_element(By.ID, "address")
            check(driver.find_element(By.CSS_SELECTOR, "label[for=address]").text != "", "the address field has a label")
            address.send_keys(args.user)
            driver.find_element(By.ID, "password").send_keys("wrong password")
            driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
            settle(driver, lambda d: "Wrong email address" in d.page_source)
            check("Wrong email address or password" in driver.page_source, "a wrong password is refused")
            shot(driver, "02-sign-in-failed")
            driver.find_element(By.ID, "password").send_keys(args.password)
            driver.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
            settle(driver, lambda d: d.current_url.endswith("/portal/"))
            check(driver.current_url.endswith("/portal/"),
                  f"signed in, on the overview (at {driver.current_url}: {driver.find_element(By.TAG_NAME, 'main').text[:200]!r})")
            check("INBOX" in driver.page_source, "the overview lists the mailboxes")
            cookie = driver.get_cookie("mailroom_session")
            check(cookie is not None and cookie.get("httpOnly") and cookie.get("sameSite") == "Lax",
                  "the session cookie is HttpOnly and SameSite=Lax")
            shot(driver, "03-overview")

            driver.get(base + "/portal/app-passwords")
            driver.find_element(By.ID, "name").send_keys("Selenium mail client")
            Select(driver.find_element(By.ID, "scope")).select_by_value("both")
            driver.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
            settle(driver, lambda d: d.find_elements(By.ID, "new-secret"))
            secret = driver.find_element(By.ID, "new-secret").text.strip()
            check(len(secret) == 29 and secret.count("-") == 5, f"an app password is shown once ({len(secret)} characters)")
            shot(driver, "04-app-password-created")

            imap = imaplib.IMAP4("127.0.0.1", args.imap_port)
            typ, _ = imap.login(args.user, secret)
            check(typ == "OK", "IMAP LOGIN with the app password")
            smtp = smtplib.SMTP("127.0.0.1", args.submission_port)
            smtp.ehlo("browser-test.example")
            smtp.login(args.user, secret)
            print("ok: SMTP AUTH with the app password")
            msg = EmailMessage()
            msg["From"] = args.user
            msg["To"] = args.user
            msg["Subject"] = "sent with an app password"
            msg.set_content("hello from the browser test\n")
            smtp.send_message(msg)
            smtp.quit()
            print("ok: submitted over SMTP")
            found = []
            deadline = time.time() + 10
            while not found and time.time() < deadline:
                imap.select("INBOX")
                typ, data = imap.search(None, "SUBJECT", '"sent with an app password"')
                found = data[0].split()
                if not found:
                    time.sleep(0.2)
            check(found, "the submitted message arrives in the INBOX over IMAP")
            imap.logout()

            driver.get(base + "/portal/app-passwords")
            check("never" not in driver.find_element(By.CSS_SELECTOR, "table").text, "its last use is listed")
            shot(driver, "05-app-passwords")
            for path, name in [
                ("/portal/sharing", "06-sharing"),
                ("/portal/password", "07-password"),
                ("/portal/admin/", "08-admin-status"),
                ("/portal/admin/accounts", "09-admin-accounts"),
                ("/portal/admin/domains", "10-admin-domains"),
                ("/portal/admin/aliases", "11-admin-aliases"),
                ("/portal/admin/queue", "12-admin-queue"),
            ]:
                driver.get(base + path)
                check(driver.find_element(By.TAG_NAME, "h1").text != "", f"{path} renders")
                shot(driver, name)
            driver.set_window_size(390, 844)
            driver.get(base + "/portal/")
            shot(driver, "13-overview-phone")
            driver.set_window_size(390, 844)
            driver.get(base + "/portal/app-passwords")
            shot(driver, "14-app-passwords-phone")
            driver.set_window_size(1280, 900)
            driver.get(base + "/portal/")
            driver.find_element(By.CSS_SELECTOR, "header form button").click()
            settle(driver, lambda d: d.current_url.endswith("/portal/sign-in"))
            check(driver.current_url.endswith("/portal/sign-in"), "signed out")
            driver.get(base + "/portal/")
            check(driver.current_url.endswith("/portal/sign-in"), "signed out for good")
        finally:
            driver.quit()


if __name__ == "__main__":
    main()
