"""The media servers AudioMuse can read: the one registry of adapters, and get_media_server().

The interface every adapter implements and the shared Album/Track types live in mediaservers/base.py (re-exported
here for callers); each adapter is one module of mediaservers/ that declares its kind, display name, settings
(what the Settings form shows and saves) and optional capabilities. Adding a server means writing its module and
adding its class to ADAPTERS.
"""

from __future__ import annotations

from dataclasses import dataclass

from config import Config
from mediaservers.base import (
    AUTOMATIC_SUFFIX,
    Album,
    AudioFile,
    AudioStream,
    AudioStreamer,
    Capability,
    CoverArtSource,
    CoverRequest,
    Library,
    LibraryTeller,
    MediaServer,
    MediaServerError,
    PlayedTrack,
    Playlist,
    SettingField,
    StickerStore,
    Track,
    TrackLister,
    UserCredentials,
    delete_automatic_playlists,
    iter_all_tracks,
    library_ids_for,
)
from mediaservers.emby import Emby
from mediaservers.jellyfin import Jellyfin
from mediaservers.local import LocalFolder
from mediaservers.lyrion import Lyrion
from mediaservers.mpd import Mpd
from mediaservers.navidrome import Navidrome

__all__ = ["ADAPTERS", "AUTOMATIC_SUFFIX", "FormField", "form_fields", "Album", "AudioFile", "AudioStream",
           "AudioStreamer", "Capability", "CoverArtSource", "CoverRequest", "Library", "LibraryTeller", "MediaServer",
           "MediaServerError", "PlayedTrack", "Playlist", "SettingField", "StickerStore", "Track", "TrackLister",
           "UserCredentials",
           "adapter_class", "delete_automatic_playlists", "get_media_server", "iter_all_tracks", "library_ids_for"]

# MEDIASERVER_TYPE → adapter, in the order the Settings form lists them.
ADAPTERS: dict[str, type[MediaServer]] = {
    cls.kind: cls for cls in (LocalFolder, Jellyfin, Emby, Navidrome, Lyrion, Mpd)  # type: ignore[misc]
}


def adapter_class(kind: str) -> type[MediaServer]:
    """The adapter class for a MEDIASERVER_TYPE value; MediaServerError for an unknown one."""
    try:
        return ADAPTERS[kind]
    except KeyError:
        raise MediaServerError(f"MEDIASERVER_TYPE={kind!r} is not a known media server "
                               f"(one of {', '.join(ADAPTERS)})") from None


def get_media_server(config: Config, *, user: UserCredentials | None = None) -> MediaServer:
    """The adapter selected by MEDIASERVER_TYPE, acting as `user` when given (else the configured account)."""
    return adapter_class(config.MEDIASERVER_TYPE).from_config(config, user=user)


@dataclass(frozen=True)
class FormField:
    """One input of the Settings form: which server types show it, and its label and placeholder for each."""

    field: str
    kinds: tuple[str, ...]
    labels: dict[str, str]
    placeholder: str


def form_fields() -> list[FormField]:
    """The Settings form's inputs, in first-declared order, from the adapters' declared settings."""
    found: dict[str, FormField] = {}
    for kind, adapter in ADAPTERS.items():
        for setting in adapter.settings:
            known = found.get(setting.field)
            if known is None:
                found[setting.field] = FormField(setting.field, (kind,), {kind: setting.label}, setting.placeholder)
            else:
                found[setting.field] = FormField(setting.field, (*known.kinds, kind), {**known.labels,
                                                 kind: setting.label}, known.placeholder or setting.placeholder)
    return list(found.values())
