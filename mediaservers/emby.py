"""Emby as the media server: Jellyfin's API (Jellyfin began as a fork of Emby) served under `/emby`, with its own
ways of creating (`POST /emby/Playlists?Name=&Ids=…`) and deleting (`POST /emby/Items/Delete?Ids=`) playlists."""

from __future__ import annotations

from typing import Any

from mediaservers.base import MUSIC_LIBRARIES_FIELD, PATH_MAPPING_FIELD, SettingField
from mediaservers.jellyfin import Jellyfin


class Emby(Jellyfin):
    """An Emby server read as one user; see `Jellyfin` for the options."""

    kind = "emby"
    display_name = "Emby"
    api_prefix = "/emby"
    settings = (SettingField("url", "EMBY_URL", "URL", "http://emby:8096"),
                SettingField("user", "EMBY_USER_ID", "User (name or id)"),
                SettingField("secret", "EMBY_TOKEN", "API key"), MUSIC_LIBRARIES_FIELD, PATH_MAPPING_FIELD)

    def _post_new_playlist(self, name: str, ids: list[str]) -> Any:
        return self.http.post_json(self._path("/Playlists"), params={
            "Name": name, "Ids": ",".join(ids), "UserId": self.user_id, "MediaType": "Audio"})

    def delete_playlist(self, playlist_id: str) -> None:
        self.http.post_json(self._path("/Items/Delete"), params={"Ids": playlist_id})
