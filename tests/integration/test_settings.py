"""Media-server settings: saved server-side, secrets never echoed in full, connection test before saving."""

from __future__ import annotations

import re

from db.app_settings import effective_config
from discovery.exclusions import Exclusions
from tests.library import make_library


def test_local_folder_connection_test_and_save(client, app, config, db, tmp_path):
    music = tmp_path / "music"
    make_library(music, albums=2, tracks_per_album=1, seconds=1)
    missing = client.post("/api/settings/mediaserver/test", json={"type": "local", "music_dir": str(tmp_path / "x")})
    assert missing.status_code == 200 and missing.get_json()["ok"] is False
    assert "does not exist" in missing.get_json()["error"]
    ok = client.post("/api/settings/mediaserver/test", json={"type": "local", "music_dir": str(music)}).get_json()
    assert ok == {"ok": True, "type": "local", "libraries": ["music"], "album_count": 2}
    assert client.get("/api/settings/mediaserver").get_json()["saved"] is False  # testing saves nothing

    saved = client.post("/api/settings/mediaserver", json={"type": "local", "music_dir": str(music)})
    assert saved.status_code == 200 and saved.get_json()["music_dir"] == str(music)
    assert effective_config(config, db).MUSIC_DIR == str(music)


def test_secrets_are_masked_and_kept_when_left_blank(client, config, db):
    body = {"type": "navidrome", "url": "http://127.0.0.1:9/", "user": "alice", "secret": "correct-horse-42"}
    saved = client.post("/api/settings/mediaserver", json=body).get_json()
    assert saved["secret_set"] is True and saved["secret_hint"] == "••••••••"
    shown = client.get("/api/settings/mediaserver")
    page = client.get("/settings").data
    assert b"correct-horse-42" not in shown.data and b"correct-horse-42" not in page
    # The page visit gave this client a session cookie, so from now on it must send the CSRF token like a browser.
    token = re.search(rb'name="csrf-token" content="([^"]+)"', page).group(1).decode()
    kept = client.post("/api/settings/mediaserver", json=dict(body, secret="", user="bob"),
                       headers={"X-CSRFToken": token})
    assert kept.status_code == 200
    effective = effective_config(config, db)
    assert (effective.NAVIDROME_USER, effective.NAVIDROME_PASSWORD) == ("bob", "correct-horse-42")


def test_bad_values_name_the_field(client):
    bad_url = client.post("/api/settings/mediaserver", json={"type": "jellyfin", "url": "ftp://x"})
    assert bad_url.status_code == 400 and bad_url.get_json()["parameter"] == "url"
    bad_type = client.post("/api/settings/mediaserver", json={"type": "plex"})
    assert bad_type.status_code == 400 and bad_type.get_json()["parameter"] == "type"
    bad_port = client.post("/api/settings/mediaserver/test", json={"type": "mpd", "port": "many"})
    assert bad_port.status_code == 400 and bad_port.get_json()["parameter"] == "port"


def test_unreachable_server_gives_a_one_line_cause(client, app):
    answer = client.post("/api/settings/mediaserver/test",
                         json={"type": "jellyfin", "url": "http://127.0.0.1:9", "user": "u", "secret": "t"}).get_json()
    assert answer["ok"] is False and "\n" not in answer["error"]


def test_a_saved_secret_is_never_sent_to_another_address(client, config):
    from routes.settings import _candidate

    saved = {"MEDIASERVER_TYPE": "jellyfin", "JELLYFIN_URL": "http://jellyfin.lan:8096", "JELLYFIN_TOKEN": "tok-1"}
    same, _ = _candidate(config, saved, {"type": "jellyfin", "url": "http://jellyfin.lan:8096", "secret": ""})
    assert same.JELLYFIN_TOKEN == "tok-1"
    moved, _ = _candidate(config, saved, {"type": "jellyfin", "url": "http://attacker.example", "secret": ""})
    assert moved.JELLYFIN_TOKEN == ""


def test_the_connection_test_reports_causes_not_what_the_other_end_sent(client):
    """Pointed at an SSH server or an internal web page, the test says what kind of failure it was and repeats
    nothing the other end sent."""
    import socket
    import threading
    from http.server import BaseHTTPRequestHandler

    from tests.fakes.server import BackgroundServer

    banner = socket.socket()
    banner.bind(("127.0.0.1", 0))
    banner.listen(4)

    def greet() -> None:
        for _ in range(4):
            try:
                conn, _ = banner.accept()
            except OSError:
                return
            conn.sendall(b"SSH-2.0-OpenSSH_9.2p1 internal-host-secret\r\n")
            conn.close()

    threading.Thread(target=greet, daemon=True).start()

    class Internal(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            body = b'{"message": "internal-page-secret: db password is hunter2"}'
            self.send_response(500 if "Library" in self.path else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    try:
        ssh = client.post("/api/settings/mediaserver/test",
                          json={"type": "mpd", "host": "127.0.0.1", "port": str(banner.getsockname()[1])}).get_json()
        assert ssh["ok"] is False and "secret" not in ssh["error"] and "SSH" not in ssh["error"]
        assert ssh["error"] in ("not an MPD server", "the server closed the connection (not an MPD server?)")
        with BackgroundServer(Internal, name="internal-page") as page:
            web = client.post("/api/settings/mediaserver/test", json={
                "type": "jellyfin", "url": page.url, "user": "0123456789abcdef0123456789abcdef", "secret": "t",
                "music_libraries": ""}).get_json()
        assert web == {"ok": False, "error": "HTTP 500"} or web["error"].startswith("the server kept failing")
        assert "hunter2" not in str(web)
    finally:
        banner.close()


def test_the_connection_test_is_rate_limited(client):
    answers = [client.post("/api/settings/mediaserver/test", json={"type": "local", "music_dir": "/nowhere"})
               for _ in range(11)]
    assert [a.status_code for a in answers[:10]] == [200] * 10
    assert answers[10].status_code == 429 and int(answers[10].headers["Retry-After"]) > 0


def test_saved_secrets_are_sealed_with_a_key_outside_the_database(client, config, db, make_config):
    import stat
    from pathlib import Path

    from app import create_app
    from db.app_settings import MEDIA_SETTINGS_KEY

    body = {"type": "navidrome", "url": "http://127.0.0.1:9/", "user": "alice", "secret": "correct-horse-42"}
    assert client.post("/api/settings/mediaserver", json=body).status_code == 200
    stored = db.fetch_one("SELECT value FROM app_settings WHERE key = %s", (MEDIA_SETTINGS_KEY,))["value"]
    assert stored.startswith("sealed:v1:") and "correct-horse" not in stored and "alice" not in stored
    assert effective_config(config, db).NAVIDROME_PASSWORD == "correct-horse-42"
    key_file = Path(config.DATA_DIR) / "settings.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    session_row = db.fetch_one("SELECT value FROM app_settings WHERE key = 'session_secret_key'")
    assert session_row is None or session_row["value"].startswith("sealed:v1:")
    # another key (a host without the key file or SETTINGS_KEY) cannot read them, and says why
    other = create_app(make_config(SETTINGS_KEY="a different key for another host")).test_client()
    refused = other.get("/api/settings/mediaserver")
    assert refused.status_code == 503 and "SETTINGS_KEY" in refused.get_json()["error"]


def test_plaintext_settings_from_before_are_sealed_at_start(make_config, db):
    import json

    from app import serve
    from db.app_settings import media_settings

    db.execute("INSERT INTO app_settings (key, value) VALUES ('mediaserver_settings', %s), "
               "('session_secret_key', 'a' || repeat('b', 63))",
               (json.dumps({"MEDIASERVER_TYPE": "jellyfin", "JELLYFIN_TOKEN": "tok-legacy"}),))
    cfg = make_config(SETTINGS_KEY="shared key of every host")
    app = serve(cfg)
    try:
        rows = {r["key"]: r["value"] for r in db.fetch_all("SELECT key, value FROM app_settings")}
        assert all(rows[k].startswith("sealed:v1:") for k in ("mediaserver_settings", "session_secret_key"))
        assert "tok-legacy" not in str(rows)
        assert media_settings(db, cfg)["JELLYFIN_TOKEN"] == "tok-legacy"
        assert app.extensions["audiomuse"].session_key == "a" + "b" * 63  # sessions made before go on working
    finally:
        app.extensions["audiomuse"].stop_background.set()


def test_blocklists_round_trip_and_override_the_environment(client, config, db):
    body = {"artists": ["Crosby, Stills & Nash", "ABBA"], "albums": [], "genres": ["Audiobook"],
            "folders": ["/music/Podcasts"], "libraries": ["Music"], "scope_folders": [], "max_duration": 1800.0}
    assert client.get("/api/settings/exclusions").get_json() == {
        "artists": [], "albums": [], "genres": [], "folders": [], "libraries": [], "scope_folders": [],
        "max_duration": None, "saved": False}
    saved = client.post("/api/settings/exclusions", json=body).get_json()
    assert saved == {**body, "saved": True}
    assert client.get("/api/settings/exclusions").get_json() == saved
    effective = effective_config(config, db)
    assert Exclusions.from_settings(effective).artists == ("Crosby, Stills & Nash", "ABBA")  # the comma is kept
    assert effective.MAX_SUGGESTED_TRACK_SECONDS == 1800
    # a field left out keeps its value, an empty list clears one, 0 is no maximum
    cleared = client.post("/api/settings/exclusions", json={"artists": [], "max_duration": 0}).get_json()
    assert (cleared["artists"], cleared["genres"], cleared["max_duration"]) == ([], ["Audiobook"], None)
