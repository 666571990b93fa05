#!/usr/bin/env python3
"""Single sign-on in a real browser: headless Chromium (Selenium) clicks "Sign in
with ..." on mailroom's portal, logs in on the pysaml2 IdP's page (idp.py), comes
back signed in through the IdP's signed response, creates an app password and reads
it from the page. Python's imaplib and smtplib then log in with it, while the
account password is refused (the domain signs in through SAML). Screenshots saved.

Needs Debian `chromium`, `chromium-driver`, `xmlsec1`, and `selenium` and `pysaml2`
from tests/interop/requirements.txt.
"""

import argparse
import functools
import imaplib
import os
import smtplib
import sys
import tempfile
import time
from email.message import EmailMessage

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "portal"))
from browser import browser, check, screenshot, settle, wait_http  # noqa: E402  (the portal test's helpers)

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--http-port", type=int, required=True)
    ap.add_argument("--imap-port", type=int, required=True)
    ap.add_argument("--submission-port", type=int, required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--idp-password", required=True)
    ap.add_argument("--account-password", required=True)
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
            button = driver.find_element(By.ID, "sso")
            check(button.text.startswith("Sign in with "), f"the sign-in page has the button {button.text!r}")
            shot(driver, "01-sign-in-with-sso")
            button.click()
            settle(driver, lambda d: d.find_elements(By.ID, "username"))
            check("/sso/redirect?SAMLRequest=" in driver.current_url, "the browser is at the IdP with our AuthnRequest")
            shot(driver, "02-idp-login")
            driver.find_element(By.ID, "username").send_keys(args.user)
            driver.find_element(By.ID, "password").send_keys(args.idp_password)
            driver.find_element(By.ID, "login").click()
            # The IdP's answer page posts the signed response to /saml/acs.
            settle(driver, lambda d: d.current_url.endswith("/portal/"))
            if not driver.current_url.endswith("/portal/"):
                # Without script the answer page has a button.
                buttons = driver.find_elements(By.CSS_SELECTOR, "input[type=submit], button")
                if buttons:
                    buttons[0].click()
                    settle(driver, lambda d: d.current_url.endswith("/portal/"))
            check(driver.current_url.endswith("/portal/"),
                  f"signed in through the IdP, on the overview (at {driver.current_url})")
            check(args.user in driver.page_source and "INBOX" in driver.page_source, "the overview is the user's")
            check("/portal/admin/" in driver.page_source, "the IdP's group made the user an administrator")
            cookie = driver.get_cookie("mailroom_session")
            check(cookie is not None and cookie.get("httpOnly"), "the session cookie is HttpOnly")
            shot(driver, "03-overview-after-sso")

            driver.get(base + "/portal/app-passwords")
            driver.find_element(By.ID, "name").send_keys("SSO mail client")
            Select(driver.find_element(By.ID, "scope")).select_by_value("both")
            driver.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
            settle(driver, lambda d: d.find_elements(By.ID, "new-secret"))
            secret = driver.find_element(By.ID, "new-secret").text.strip()
            check(len(secret) == 29 and secret.count("-") == 5, "an app password is shown once")
            shot(driver, "04-app-password-created")

            imap = imaplib.IMAP4("127.0.0.1", args.imap_port)
            try:
                imap.login(args.user, args.account_password)
                check(False, "IMAP LOGIN with the account password is refused")
            except imaplib.IMAP4.error:
                print("ok: IMAP LOGIN with the account password is refused (SSO domain)")
            imap = imaplib.IMAP4("127.0.0.1", args.imap_port)
            typ, _ = imap.login(args.user, secret)
            check(typ == "OK", "IMAP LOGIN with the app password")

            smtp = smtplib.SMTP("127.0.0.1", args.submission_port)
            smtp.ehlo("sso-browser-test.example")
            try:
                smtp.login(args.user, args.account_password)
                check(False, "SMTP AUTH with the account password is refused")
            except smtplib.SMTPAuthenticationError:
                print("ok: SMTP AUTH with the account password is refused (SSO domain)")
            smtp.login(args.user, secret)
            print("ok: SMTP AUTH with the app password")
            msg = EmailMessage()
            msg["From"] = args.user
            msg["To"] = args.user
            msg["Subject"] = "sent after single sign-on"
            msg.set_content("hello from the SAML browser test\n")
            smtp.send_message(msg)
            smtp.quit()
            print("ok: submitted over SMTP")
            found = []
            deadline = time.time() + 10
            while not found and time.time() < deadline:
                imap.select("INBOX")
                typ, data = imap.search(None, "SUBJECT", '"sent after single sign-on"')
                found = data[0].split()
                if not found:
                    time.sleep(0.2)
            check(found, "the submitted message arrives in the INBOX over IMAP")
            imap.logout()

            driver.get(base + "/portal/")
            driver.find_element(By.CSS_SELECTOR, "header form button").click()
            settle(driver, lambda d: d.current_url.endswith("/portal/sign-in"))
            check(driver.current_url.endswith("/portal/sign-in"), "signed out")
            # Password sign-in is off for the domain.
            driver.find_element(By.ID, "address").send_keys(args.user)
            driver.find_element(By.ID, "password").send_keys(args.account_password)
            driver.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
            settle(driver, lambda d: "not with a password" in d.page_source)
            check("not with a password" in driver.page_source, "the portal refuses the password of an SSO domain")
            shot(driver, "05-password-refused")
        finally:
            driver.quit()


if __name__ == "__main__":
    main()
