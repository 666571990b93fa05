#!/usr/bin/env python3
"""Single sign-on to mailroom's portal through the pysaml2 IdP (idp.py), over plain
HTTP (urllib, a cookie jar, no browser): the AuthnRequest redirect, the IdP's login
form, its signed response posted to /saml/acs, the portal session. Then what must
fail: a replay of that response, a tampered copy, a wrong IdP password, and the
portal password form for the SSO domain.
"""

import argparse
import base64
import html.parser
import http.cookiejar
import sys
import urllib.error
import urllib.parse
import urllib.request


def check(condition, what):
    if not condition:
        print(f"FAILED: {what}")
        sys.exit(1)
    print(f"ok: {what}")


class Forms(html.parser.HTMLParser):
    """The forms of a page: action and their inputs' names and values."""

    def __init__(self):
        super().__init__()
        self.forms = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({"action": attrs.get("action", ""), "fields": {}})
        elif tag == "input" and self.forms and attrs.get("name"):
            self.forms[-1]["fields"][attrs["name"]] = attrs.get("value") or ""


def forms(page):
    parser = Forms()
    parser.feed(page)
    return parser.forms


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--http-port", type=int, required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True, help="the user's IdP password")
    ap.add_argument("--account-password", required=True, help="the mailroom account password")
    args = ap.parse_args()
    base = f"http://127.0.0.1:{args.http_port}"
    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    raw = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), NoRedirect())

    def post(opener, url, fields):
        data = urllib.parse.urlencode(fields).encode()
        try:
            r = opener.open(urllib.request.Request(url, data=data), timeout=30)
            return r.status, r.geturl(), r.read().decode(), r.headers
        except urllib.error.HTTPError as e:
            return e.code, url, e.read().decode(), e.headers

    page = browser.open(base + "/portal/sign-in", timeout=30).read().decode()
    check("Sign in with pysaml2 test IdP" in page, "the sign-in page offers the IdP")

    # SP-initiated: /saml/login redirects to the IdP's login form.
    r = browser.open(base + "/saml/login", timeout=30)
    idp_page = r.read().decode()
    check("/sso/redirect?SAMLRequest=" in r.geturl(), f"redirected to the IdP ({r.geturl()[:60]}...)")
    login = forms(idp_page)[0]
    idp_base = urllib.parse.urljoin(r.geturl(), login["action"])

    status, _, _, _ = post(browser, idp_base, {**login["fields"], "username": args.user, "password": "wrong"})
    check(status == 401, "the IdP refuses a wrong password")

    status, _, answer, _ = post(browser, idp_base, {**login["fields"], "username": args.user, "password": args.password})
    check(status == 200, "the IdP signs the user in")
    post_form = forms(answer)[0]
    acs = post_form["action"]
    saml_response = post_form["fields"]["SAMLResponse"]
    check(acs == base + "/saml/acs", f"the IdP posts to our assertion consumer ({acs})")
    xml = base64.b64decode(saml_response).decode()
    check("xmldsig-more#rsa-sha256" in xml and ":SignatureValue>" in xml, "pysaml2 signed with RSA-SHA256")

    # A tampered copy (another address in the signed assertion) first: refused, and
    # the genuine response still works after it.
    other = args.user.replace("@", "-evil@")
    tampered = base64.b64encode(xml.replace(args.user, other).encode()).decode()
    status, _, body, _ = post(raw, acs, {"SAMLResponse": tampered, "RelayState": post_form["fields"].get("RelayState", "")})
    check(status == 403, f"a tampered response is refused ({status})")

    status, url, body, _ = post(browser, acs, post_form["fields"])
    check(status == 200 and url.endswith("/portal/"), f"signed in through SAML, on the overview ({status} {url})")
    check(args.user in body and "INBOX" in body, "the overview is the user's")
    check(any(c.name == "mailroom_session" for c in jar), "a session cookie was set")

    status, _, body, _ = post(raw, acs, post_form["fields"])
    check(status == 403, f"the same response again is refused ({status})")

    # Password sign-in is off for the SSO domain.
    fresh = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    page = fresh.open(base + "/portal/sign-in", timeout=30).read().decode()
    csrf = forms(page)[-1]["fields"]["csrf"]
    status, _, body, _ = post(fresh, base + "/portal/sign-in",
                              {"csrf": csrf, "address": args.user, "password": args.account_password})
    check(status == 403 and "sign in with pysaml2 test IdP" in body, f"password sign-in is off for the domain ({status})")


if __name__ == "__main__":
    main()
