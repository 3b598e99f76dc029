"""The navigation and the pages: one view per page, rendering its template with what the page starts from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from typing import Any

from flask import Blueprint, render_template

from db import api_tokens
from db import tracks as track_store
from db.app_settings import effective_config
from mediaserver import ADAPTERS, Capability, MediaServerError, form_fields
from routes.common import clustering_defaults, preset_request
from routes.context import runtime
from services.backup import list_backups
from services.home import glance

bp = Blueprint("pages", __name__)


@dataclass(frozen=True)
class Page:
    endpoint: str
    path: str
    title: str
    purpose: str
    group: str  # the navigation's heading it is listed under (NAV_GROUPS)


# What the user wants to do, in the order the navigation shows it
NAV_GROUPS = ("Discover", "Playlists", "Library", "System")

PAGES = (
    Page("similarity", "/similarity", "Similar songs", "Find songs that sound like a chosen song.", "Discover"),
    Page("mix", "/mix", "Mix", "The next songs after a queue, each with why it was chosen; keep MPD's queue going.",
         "Discover"),
    Page("path", "/path", "Song path", "Build a smooth path of songs from one song to another.", "Discover"),
    Page("alchemy", "/alchemy", "Song alchemy", "Blend several songs (and subtract others) into one playlist.",
         "Discover"),
    Page("map", "/map", "Music map", "See the whole library on a 2-D map of sound.", "Discover"),
    Page("text_search", "/text_search", "Text search", "Search the library by describing the music in words.",
         "Discover"),
    Page("chat", "/chat", "Instant playlist", "Ask for a playlist in plain language.", "Discover"),
    Page("search", "/search", "Library search", "Find songs by words and sound, filtered by tempo, key and energy.",
         "Discover"),
    Page("sonic_fingerprint", "/sonic_fingerprint", "Sonic fingerprint",
         "A playlist from what you actually listen to.", "Discover"),
    Page("clustering", "/clustering", "Clustering",
         "Group the library into playlists with an evolutionary search over clustering algorithms.", "Playlists"),
    Page("smart_playlists", "/smart_playlists", "Smart playlists",
         "Playlists defined by a rule that keep themselves up to date.", "Playlists"),
    Page("playlist_matching", "/playlists/match", "Playlist matching",
         "Sort new songs into your own playlists, and extend a playlist with songs that fit.", "Playlists"),
    Page("analysis", "/analysis", "Analysis",
         "Scan the library and compute embeddings, moods, tempo and key for every track.", "Library"),
    Page("versions", "/versions", "Versions",
         "The songs your library holds as several files, and the copy every list shows.", "Library"),
    Page("cleaning", "/cleaning", "Cleaning", "Remove tracks that are no longer on the media server.", "Library"),
    Page("schedules", "/cron", "Schedules", "Run analysis, clustering, cleaning and more on a schedule.", "System"),
    Page("settings", "/settings", "Settings", "Configuration in force and access control.", "System"),
)
HOME = Page("home", "/", "Home", "The library at a glance, what needs attention, and where to start.", "")
PAGES_BY_ENDPOINT = {p.endpoint: p for p in PAGES}


@bp.route("/")
def home() -> str:
    return render_template("home.html", page=HOME, glance=glance(runtime().db))


@bp.route("/analysis")
def analysis() -> str:
    rt = runtime()
    return render_template("analysis.html", page=PAGES_BY_ENDPOINT["analysis"], pages=PAGES,
                           defaults={"num_recent_albums": rt.config.NUM_RECENT_ALBUMS,
                                     "top_n_moods": rt.config.TOP_N_MOODS},
                           source={"type": rt.config.MEDIASERVER_TYPE, "music_dir": rt.config.MUSIC_DIR},
                           fast_stride=_ordinal(rt.config.FAST_ANALYSIS_PATCH_STRIDE),
                           fast_first=rt.config.FAST_ANALYSIS_FIRST_RUN_TRACKS)


def _ordinal(n: int) -> str:
    """3 → "3rd" (the fast analysis's stride, in words a reader expects)."""
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


@bp.route("/clustering")
def clustering() -> str:
    preset, size = preset_request()
    defaults = clustering_defaults().as_dict()
    # The page asks how many playlists up front: CLUSTERING_PLAYLISTS_WANTED when set, else the playlists kept
    defaults["playlists_wanted"] = defaults["playlists_wanted"] or defaults["top_n_playlists"]
    return render_template("clustering.html", page=PAGES_BY_ENDPOINT["clustering"], defaults=defaults,
                           preset=preset.as_dict(), library_size=size)


@bp.route("/similarity")
def similarity() -> str:
    return render_template("similarity.html", page=PAGES_BY_ENDPOINT["similarity"],
                           max_per_artist=runtime().config.MAX_SONGS_PER_ARTIST)


@bp.route("/mix")
def mix() -> str:
    cfg = runtime().config
    return render_template("mix.html", page=PAGES_BY_ENDPOINT["mix"], max_count=cfg.MIX_MAX_COUNT)


@bp.route("/path")
def path() -> str:
    return render_template("path.html", page=PAGES_BY_ENDPOINT["path"],
                           default_length=runtime().config.PATH_DEFAULT_LENGTH)


@bp.route("/alchemy")
def alchemy() -> str:
    cfg = runtime().config
    return render_template("alchemy.html", page=PAGES_BY_ENDPOINT["alchemy"], default_n=cfg.ALCHEMY_DEFAULT_N_RESULTS,
                           temperature=cfg.ALCHEMY_TEMPERATURE, subtract_distance=cfg.ALCHEMY_SUBTRACT_DISTANCE)


@bp.route("/map", endpoint="map")
def music_map() -> str:
    from discovery.map_cache import PERCENTS

    return render_template("map.html", page=PAGES_BY_ENDPOINT["map"], percents=PERCENTS,
                           max_selection=runtime().config.MAP_SELECTION_MAX)


@bp.route("/text_search", endpoint="text_search")
def text_search() -> str:
    return render_template("text_search.html", page=PAGES_BY_ENDPOINT["text_search"])


@bp.route("/chat", endpoint="chat")
def chat() -> str:
    return render_template("chat.html", page=PAGES_BY_ENDPOINT["chat"])


@bp.route("/cleaning", endpoint="cleaning")
def cleaning() -> str:
    cfg = runtime().config
    return render_template("cleaning.html", page=PAGES_BY_ENDPOINT["cleaning"], safety_limit=cfg.CLEANING_SAFETY_LIMIT,
                           min_remaining=cfg.CLEANING_MIN_REMAINING_FRACTION,
                           analyzed=track_store.count_analyzed(runtime().db))


@bp.route("/versions", endpoint="versions")
def versions() -> str:
    return render_template("versions.html", page=PAGES_BY_ENDPOINT["versions"])


@bp.route("/search", endpoint="search")
def search() -> str:

    return render_template("search.html", page=PAGES_BY_ENDPOINT["search"], trigram=runtime().trigram)


@bp.route("/smart_playlists", endpoint="smart_playlists")
def smart_playlists() -> str:
    from discovery.smart_rules import FIELDS

    return render_template("smart_playlists.html", page=PAGES_BY_ENDPOINT["smart_playlists"], fields=FIELDS)


@bp.route("/playlists/match")
def playlist_matching() -> str:
    return render_template("playlist_matching.html", page=PAGES_BY_ENDPOINT["playlist_matching"])


@bp.route("/cron")
def schedules() -> str:
    from tasks.catalog import schedulable

    cfg = runtime().config
    kinds = schedulable()
    return render_template("schedules.html", page=PAGES_BY_ENDPOINT["schedules"],
                           task_types={name: kind.title for name, kind in kinds.items()},
                           param_hints={name: kind.hint for name, kind in kinds.items()},
                           default_timezone=cfg.CRON_DEFAULT_TIMEZONE, catch_up=cfg.CRON_CATCH_UP,
                           enabled=cfg.CRON_ENABLED, poll_seconds=cfg.CRON_POLL_SECONDS)


@bp.route("/sonic_fingerprint")
def sonic_fingerprint() -> str:
    rt = runtime()
    try:  # said before the click: a server that keeps no play history cannot make a fingerprint
        server = rt.media_server()
        no_history = None if Capability.PLAY_HISTORY in server.capabilities else server.display_name
    except MediaServerError:
        no_history = None  # the media server's problem is said when the fingerprint is asked for
    return render_template("sonic_fingerprint.html", page=PAGES_BY_ENDPOINT["sonic_fingerprint"],
                           default_n=rt.config.SONIC_FINGERPRINT_NEIGHBORS, no_history=no_history)


@bp.route("/settings")
def settings() -> str:
    rt = runtime()
    return render_template("settings.html", page=PAGES_BY_ENDPOINT["settings"], pages=PAGES,
                           settings=effective_config(rt.config, rt.db).describe(), auth=rt.auth, adapters=ADAPTERS,
                           form_fields=form_fields(), backups=list_backups(rt.config),
                           backup_keep=rt.config.BACKUP_KEEP, tokens=_in_utc(api_tokens.list_tokens(rt.db)))


def _in_utc(tokens: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The page says UTC: PostgreSQL answers in its session's time zone (the host's, for the embedded one)."""
    return [{**t, "created_at": t["created_at"].astimezone(UTC),
             "last_used_at": t["last_used_at"].astimezone(UTC) if t["last_used_at"] else None} for t in tokens]


@bp.app_context_processor
def _navigation() -> dict[str, object]:
    return {"nav_pages": PAGES,
            "nav_groups": [(group, [p for p in PAGES if p.group == group]) for group in NAV_GROUPS]}
