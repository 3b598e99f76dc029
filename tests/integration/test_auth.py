"""Access control: open without a password, locked with one, bearer tokens, CSRF, cookies, no leaked secrets."""

from __future__ import annotations

import logging
import re

import pytest

from app import serve

PASSWORD = "correct horse battery"
TOKEN = "script-token-1234567890"


@pytest.fixture
def locked_app(make_config):
    app = serve(make_config(ADMIN_PASSWORD=PASSWORD, API_TOKEN=TOKEN))
    yield app
    app.extensions["audiomuse"].stop_background.set()


def csrf_from(html: bytes) -> str:
    match = re.search(rb'name="csrf-token" content="([^"]+)"', html) or re.search(
        rb'name="csrf_token" value="([^"]+)"', html)
    assert match, "page has no CSRF token"
    return match.group(1).decode()


def login(client, password: str = PASSWORD):
    token = csrf_from(client.get("/login").data)
    return client.post("/login", data={"password": password, "csrf_token": token, "next": "/settings"})


def test_open_when_no_password(client):
    assert client.get("/").status_code == 200
    assert client.get("/api/active_tasks").status_code == 200
    assert client.get("/login").status_code == 302  # nothing to log in to


def test_locked_when_password_set(locked_app):
    client = locked_app.test_client()
    page = client.get("/clustering")
    assert page.status_code == 302 and page.headers["Location"].startswith("/login?next=/clustering")
    api = client.get("/api/active_tasks")
    assert api.status_code == 401 and "login required" in api.get_json()["error"]
    assert client.get("/api/health").status_code in (200, 503)  # open, reports state
    assert client.get("/static/js/tasks.js").status_code == 200


def test_login_with_wrong_then_right_password(locked_app):
    client = locked_app.test_client()
    wrong = login(client, "nope")
    assert wrong.status_code == 401 and b"Wrong password." in wrong.data
    assert client.get("/api/active_tasks").status_code == 401
    right = login(client)
    assert right.status_code == 302 and right.headers["Location"] == "/settings"
    assert client.get("/api/active_tasks").status_code == 200
    assert client.get("/").status_code == 200


def test_login_refuses_off_site_redirect(locked_app):
    client = locked_app.test_client()
    token = csrf_from(client.get("/login").data)
    response = client.post("/login", data={"password": PASSWORD, "csrf_token": token, "next": "//evil.example/x"})
    assert response.headers["Location"] == "/"


def test_session_cookie_is_httponly_and_samesite(locked_app):
    client = locked_app.test_client()
    response = login(client)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_bearer_token(locked_app):
    client = locked_app.test_client()
    ok = client.get("/api/active_tasks", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200
    wrong = client.get("/api/active_tasks", headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status_code == 401 and wrong.get_json()["error"] == "invalid API token"
    assert wrong.headers["WWW-Authenticate"].startswith("Bearer")
    malformed = client.get("/api/active_tasks", headers={"Authorization": "Basic abc"})
    assert malformed.status_code == 401
    # A bearer request needs no CSRF token: it carries no ambient browser credentials.
    posted = client.post("/api/cancel/unknown-id", headers={"Authorization": f"Bearer {TOKEN}"})
    assert posted.status_code == 200 and posted.get_json()["cancelled_jobs_count"] == 0


def test_csrf_rejects_forged_posts(locked_app):
    client = locked_app.test_client()
    login(client)
    forged = client.post("/logout", headers={"Origin": "http://evil.example"})
    assert forged.status_code == 403
    no_token = client.post("/api/cancel/some-id")
    assert no_token.status_code == 403 and no_token.get_json()["parameter"] == "csrf_token"
    token = csrf_from(client.get("/settings").data)
    wrong_origin = client.post("/api/cancel/some-id", headers={"X-CSRFToken": token, "Origin": "http://evil.example"})
    assert wrong_origin.status_code == 403
    good = client.post("/api/cancel/some-id", headers={"X-CSRFToken": token, "Origin": "http://localhost"})
    assert good.status_code == 200 and good.get_json()["status"] == "UNKNOWN"  # past CSRF and auth: no such task


def test_csrf_in_open_mode_stops_browser_forgeries_but_not_scripts(client):
    forged = client.post("/api/cancel/x", headers={"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"})
    assert forged.status_code == 403
    script = client.post("/api/cancel/x")
    assert script.status_code == 200 and script.get_json()["cancelled_jobs_count"] == 0


def test_first_run_setup_locks_the_server(app):
    client = app.test_client()
    token = csrf_from(client.get("/setup").data)
    short = client.post("/setup", data={"password": "short", "confirm": "short", "csrf_token": token})
    assert short.status_code == 400
    done = client.post("/setup", data={"password": PASSWORD, "confirm": PASSWORD, "csrf_token": token})
    assert done.status_code == 200
    api_token = re.search(rb'data-testid="api-token">([^<]+)<', done.data).group(1).decode()
    stranger = app.test_client()
    assert stranger.get("/api/active_tasks").status_code == 401
    assert stranger.get("/api/active_tasks", headers={"Authorization": f"Bearer {api_token}"}).status_code == 200
    assert stranger.get("/setup").status_code == 302  # setup cannot be run twice
    login(stranger)
    assert stranger.get("/api/active_tasks").status_code == 200
    stored = app.extensions["audiomuse"].db.fetch_one(
        "SELECT value FROM app_settings WHERE key = 'admin_password_hash'")["value"]
    assert stored.startswith("$argon2") and PASSWORD not in stored


def test_secrets_never_reach_pages_or_logs(make_config, caplog):
    caplog.set_level(logging.DEBUG)
    cfg = make_config(ADMIN_PASSWORD=PASSWORD, API_TOKEN=TOKEN, SECRET_KEY="sk-very-secret-value")
    app = serve(cfg)
    try:
        client = app.test_client()
        login(client)
        pages = b"".join(client.get(p).data for p in ("/settings", "/", "/api/health", "/api/active_tasks"))
        for secret in (PASSWORD, TOKEN, "sk-very-secret-value", cfg.database_url):
            assert secret.encode() not in pages
            assert secret not in caplog.text
        assert not app.debug
    finally:
        app.extensions["audiomuse"].stop_background.set()


def test_login_refuses_backslash_and_control_character_redirects(locked_app):
    client = locked_app.test_client()
    for target in ("/\\evil.example", "/\t/evil.example", "https://evil.example/", "/ok?x=1"):
        token = csrf_from(client.get("/login").data)
        response = client.post("/login", data={"password": PASSWORD, "csrf_token": token, "next": target})
        assert response.headers["Location"] == ("/ok?x=1" if target == "/ok?x=1" else "/"), target


def test_a_password_change_ends_old_sessions(make_config):
    first = serve(make_config(ADMIN_PASSWORD=PASSWORD))
    client = first.test_client()
    login(client)
    assert client.get("/api/active_tasks").status_code == 200
    first.extensions["audiomuse"].stop_background.set()
    second = serve(make_config(ADMIN_PASSWORD="a different password"))
    try:
        other = second.test_client()
        other.set_cookie("audiomuse_session", client.get_cookie("audiomuse_session").value)
        assert other.get("/api/active_tasks").status_code == 401
    finally:
        second.extensions["audiomuse"].stop_background.set()


def test_sessions_survive_a_restart_with_the_same_password(make_config):
    first = serve(make_config(ADMIN_PASSWORD=PASSWORD))
    client = first.test_client()
    login(client)
    first.extensions["audiomuse"].stop_background.set()
    second = serve(make_config(ADMIN_PASSWORD=PASSWORD))
    try:
        other = second.test_client()
        other.set_cookie("audiomuse_session", client.get_cookie("audiomuse_session").value)
        assert other.get("/api/active_tasks").status_code == 200
        assert PASSWORD.encode() not in client.get_cookie("audiomuse_session").value.encode()
    finally:
        second.extensions["audiomuse"].stop_background.set()


def test_unknown_host_names_are_refused_on_a_loopback_server(client):
    assert client.get("/api/health", headers={"Host": "localhost:8000"}).status_code in (200, 503)
    assert client.get("/api/health", headers={"Host": "rebound.evil.example"}).status_code == 400


def test_an_exposed_server_without_a_password_fails_closed_until_setup_with_the_logged_code(make_config, caplog):
    caplog.set_level(logging.WARNING)
    app = serve(make_config(HOST="0.0.0.0"))
    try:
        code = re.search(r"setup code ([0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4})", caplog.text).group(1)
        client = app.test_client()
        assert client.get("/api/active_tasks").status_code == 403
        assert client.get("/api/analysis/summary").get_json()["error"].startswith("set an admin password first")
        assert client.get("/").headers["Location"].endswith("/setup")
        assert client.get("/api/health").status_code in (200, 503)  # monitors still see it
        page = client.get("/setup")
        assert b'name="setup_code"' in page.data
        token = csrf_from(page.data)
        form = {"password": PASSWORD, "confirm": PASSWORD, "csrf_token": token}
        assert client.post("/setup", data=form).status_code == 403  # no code
        assert client.post("/setup", data=dict(form, setup_code="0000-0000-0000")).status_code == 403
        assert client.get("/api/active_tasks").status_code == 403  # still closed
        done = client.post("/setup", data=dict(form, setup_code=code.lower()))
        assert done.status_code == 200 and b"api-token" in done.data, done.data[-600:]
        assert client.get("/api/active_tasks").status_code == 200  # this browser is signed in
        stranger = app.test_client()
        assert stranger.get("/api/active_tasks").status_code == 401  # everyone else needs the password now
        assert app.extensions["audiomuse"].db.fetch_one(
            "SELECT count(*) AS n FROM app_settings WHERE key = 'setup_code'")["n"] == 0  # used up
    finally:
        app.extensions["audiomuse"].stop_background.set()


def test_a_second_replica_sees_the_password_and_cannot_overwrite_it(make_config):
    import time

    first, second = serve(make_config()), serve(make_config())
    try:
        one, two = first.test_client(), second.test_client()
        assert two.get("/api/active_tasks").status_code == 200  # open, and it has read that
        token = csrf_from(one.get("/setup").data)
        assert one.post("/setup", data={"password": PASSWORD, "confirm": PASSWORD, "csrf_token": token}).status_code \
            == 200
        stored = first.extensions["audiomuse"].db.fetch_one(
            "SELECT value FROM app_settings WHERE key = 'admin_password_hash'")["value"]
        time.sleep(2.2)  # the replica reads the credentials again at most this long after
        assert two.get("/api/active_tasks").status_code == 401
        # a setup form loaded on the second replica before the password existed cannot overwrite it
        other = "another password 123"
        late = second.extensions["audiomuse"]
        from routes.security import set_up

        with pytest.raises(PermissionError):
            set_up(late.db, other)
        assert late.db.fetch_one("SELECT value FROM app_settings WHERE key = 'admin_password_hash'")["value"] == stored
        assert two.get("/setup").status_code == 302
    finally:
        for app in (first, second):
            app.extensions["audiomuse"].stop_background.set()


def test_password_guessing_is_stopped_after_five_failures(locked_app):
    client = locked_app.test_client()
    for _ in range(5):
        assert login(client, "wrong guess").status_code == 401
    refused = login(client)  # even the right password, while the address is locked
    assert refused.status_code == 429 and b"Too many wrong passwords" in refused.data
    locked_app.extensions["audiomuse"].redis.delete("audiomuse:ratelimit:login-failures:127.0.0.1")
    assert login(client).status_code == 302


def test_parallel_guesses_get_five_password_checks_in_all(locked_app):
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from werkzeug.serving import make_server

    http = make_server("127.0.0.1", 0, locked_app, threaded=True)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{http.server_port}"

    def guess(number: int) -> int:
        import requests

        with requests.Session() as browser:
            token = csrf_from(browser.get(base + "/login", timeout=30).content)
            return browser.post(base + "/login", data={"password": f"wrong {number}", "csrf_token": token},
                                timeout=60, allow_redirects=False).status_code

    try:
        with ThreadPoolExecutor(max_workers=40) as pool:
            statuses = list(pool.map(guess, range(40)))
    finally:
        http.shutdown()
    assert sorted(statuses) == [401] * 5 + [429] * 35  # each of the 40 counted before its check: 5 checked


def test_log_out_everywhere_and_a_password_change_end_other_sessions(make_config):
    app = serve(make_config())
    try:
        browser = app.test_client()
        token = csrf_from(browser.get("/setup").data)
        browser.post("/setup", data={"password": PASSWORD, "confirm": PASSWORD, "csrf_token": token})
        laptop = app.test_client()
        login(laptop)
        assert laptop.get("/api/active_tasks").status_code == 200
        page = browser.get("/settings")
        assert b"Log out everywhere" in page.data and b"Change password" in page.data
        changed = browser.post("/settings/password", data={"current": PASSWORD, "password": "new password 456",
                                                           "confirm": "new password 456",
                                                           "csrf_token": csrf_from(page.data)})
        assert changed.status_code == 200 and b"Every other login session has ended" in changed.data
        assert laptop.get("/api/active_tasks").status_code == 401  # ended
        assert browser.get("/api/active_tasks").status_code == 200  # the one that changed it goes on
        wrong = browser.post("/settings/password", data={"current": "nope", "password": "x" * 9, "confirm": "x" * 9,
                                                         "csrf_token": csrf_from(browser.get("/settings").data)})
        assert wrong.status_code == 403
        login(laptop, "new password 456")
        assert laptop.get("/api/active_tasks").status_code == 200
        browser.post("/logout/everywhere", data={"csrf_token": csrf_from(browser.get("/settings").data)})
        assert laptop.get("/api/active_tasks").status_code == 401 and browser.get("/api/active_tasks").status_code \
            == 401
    finally:
        app.extensions["audiomuse"].stop_background.set()


# The routes the reference's clients call (and the export), each with a Bearer token only: never a login page or a
# CSRF refusal. None of them needs data to get past auth: a 4xx/5xx from the view itself is fine here.
BEARER_ROUTES = [("GET", "/api/max_distance?item_id=x"), ("GET", "/api/config"),
                 ("POST", "/api/cancel_all/main_analysis"), ("GET", "/chat/api/config_defaults"),
                 ("GET", "/api/similar_tracks?item_id=x&mood_similarity=true"), ("GET", "/api/find_path"),
                 ("POST", "/api/alchemy"), ("POST", "/api/create_playlist"), ("POST", "/api/cancel/x"),
                 ("GET", "/api/status/x"), ("GET", "/api/sonic_fingerprint/generate?jellyfin_user_identifier=a"),
                 ("POST", "/api/clustering/start"), ("POST", "/api/analysis/start"), ("GET", "/api/sync?fields=index")]


@pytest.mark.parametrize(("method", "path"), BEARER_ROUTES)
def test_bearer_token_on_each_plugin_route(locked_app, method, path):
    client = locked_app.test_client()
    assert client.open(path, method=method).status_code == 401
    answer = client.open(path, method=method, headers={"Authorization": f"Bearer {TOKEN}"}, json={})
    assert answer.status_code not in (401, 403), answer.get_json()


def test_a_logged_out_session_cookie_replayed_is_refused(locked_app):
    """Logging out ends the session on the server: a copy of its cookie, taken before, signs no one in after."""
    client = locked_app.test_client()
    login(client)
    assert client.get("/api/active_tasks").status_code == 200
    cookie = client.get_cookie("audiomuse_session")
    assert cookie is not None
    client.post("/logout", data={"csrf_token": csrf_from(client.get("/settings").data)})
    replay = locked_app.test_client()
    replay.set_cookie("audiomuse_session", cookie.value)
    assert replay.get("/api/active_tasks").status_code == 401
    other = locked_app.test_client()  # a session logged in elsewhere goes on
    login(other)
    assert other.get("/api/active_tasks").status_code == 200


def test_named_tokens_each_work_and_are_made_rotated_and_revoked_alone(make_config):
    app = serve(make_config(ADMIN_PASSWORD=PASSWORD))
    try:
        browser = app.test_client()
        login(browser)
        page = browser.get("/settings")
        assert b"None yet" in page.data

        def make(name: str) -> str:
            made = browser.post("/settings/token", data={"action": "new", "name": name,
                                                         "csrf_token": csrf_from(browser.get("/settings").data)})
            assert made.status_code == 200, made.data[:300]
            return re.search(rb'id="new-token" value="([^"]+)"', made.data).group(1).decode()

        plugin, backup = make("Navidrome plugin"), make("Backup script")
        script = app.test_client()
        works = lambda token: script.get("/api/active_tasks",  # noqa: E731
                                         headers={"Authorization": f"Bearer {token}"}).status_code
        assert (works(plugin), works(backup)) == (200, 200)
        page = browser.get("/settings").data.decode()
        assert "Navidrome plugin" in page and "Backup script" in page and plugin not in page
        for name in ("Navidrome plugin", "Backup script"):  # each was used once just now: its last use is shown
            last_used = re.search(rf"<td>{name}</td><td>[^<]*</td>\s*<td>([^<]*)</td>", page)
            assert last_used and last_used.group(1)[:4].isdigit(), (name, last_used)
        again = make("Navidrome plugin")  # the same name: a rotation
        assert again != plugin and (works(plugin), works(again), works(backup)) == (401, 200, 200)
        revoked = browser.post("/settings/token", data={"action": "revoke", "name": "Backup script",
                                                         "csrf_token": csrf_from(browser.get("/settings").data)})
        assert revoked.status_code == 200 and b"revoked" in revoked.data
        assert (works(backup), works(again)) == (401, 200)
        missing = browser.post("/settings/token", data={"action": "revoke", "name": "Backup script",
                                                         "csrf_token": csrf_from(browser.get("/settings").data)})
        assert missing.status_code == 404
        unnamed = browser.post("/settings/token", data={"action": "new", "name": "  ",
                                                         "csrf_token": csrf_from(browser.get("/settings").data)})
        assert unnamed.status_code == 400 and b"give the token a name" in unnamed.data.lower()
        # the page's form, from a signed-in browser, without its CSRF token: refused, nothing made
        forged = browser.post("/settings/token", data={"action": "new", "name": "forged"})
        assert forged.status_code == 403 and b"forged" not in browser.get("/settings").data

        # the same through the API, from the signed-in browser (its CSRF token in a header)
        api = {"X-CSRFToken": csrf_from(browser.get("/settings").data)}
        listed = browser.get("/api/tokens").get_json()
        assert [t["name"] for t in listed["tokens"]] == ["Navidrome plugin"] and not listed["environment_token"]
        assert set(listed["tokens"][0]) == {"name", "created_at", "last_used_at"}
        made = browser.post("/api/tokens", json={"name": "cli"}, headers=api)
        assert made.status_code == 201 and made.get_json()["name"] == "cli"
        assert works(made.get_json()["token"]) == 200
        for bad in ({"name": ""}, {"name": "x" * 61}, {"name": "API_TOKEN"}, {"name": "a\nb"}, {}, ["cli"],
                    {"name": "cli\u200b"}, {"name": "a\u202eb"}, {"name": "\ud800"}, {"name": "a/b"}, {"name": ".."}):
            refused = browser.post("/api/tokens", json=bad, headers=api)
            assert refused.status_code == 400 and refused.get_json()["parameter"] == "name", (bad, refused.data)
        # a token cannot manage tokens: a leaked one could make itself another and outlive its revocation
        bearer = {"Authorization": f"Bearer {again}"}
        for answer in (script.get("/api/tokens", headers=bearer), script.post("/api/tokens", json={"name": "x"},
                                                                               headers=bearer),
                       script.delete("/api/tokens/cli", headers=bearer),
                       script.post("/settings/token", data={"action": "new", "name": "x"}, headers=bearer)):
            assert answer.status_code == 403, answer.data[:200]
        assert browser.delete("/api/tokens/cli", headers=api).status_code == 204
        assert works(made.get_json()["token"]) == 401
        assert browser.delete("/api/tokens/cli", headers=api).status_code == 404
    finally:
        app.extensions["audiomuse"].stop_background.set()


def test_a_token_from_the_environment_is_listed_and_cannot_be_changed_from_the_page(locked_app):
    client = locked_app.test_client()
    login(client)
    page = client.get("/settings")
    assert b"from the environment" in page.data
    refused = client.post("/settings/token", data={"action": "new", "name": "API_TOKEN",
                                                   "csrf_token": csrf_from(page.data)})
    assert refused.status_code == 400 and b"change it there" in refused.data
    assert client.get("/api/active_tasks", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    made = client.post("/settings/token", data={"action": "new", "name": "player",
                                                "csrf_token": csrf_from(page.data)})
    token = re.search(rb'id="new-token" value="([^"]+)"', made.data).group(1).decode()
    for sent in (TOKEN, token):  # both work side by side
        assert client.get("/api/active_tasks", headers={"Authorization": f"Bearer {sent}"}).status_code == 200
    assert client.delete("/api/tokens/API_TOKEN", headers={"X-CSRFToken": csrf_from(page.data)}).status_code == 400


