"""An HTTP session that never carries credentials to another host.

requests drops `Authorization` when a redirect leaves the host, but not the other headers servers take tokens in
(Jellyfin's and Emby's `X-Emby-Token`, Gemini's `x-goog-api-key`, ...): a server, or anyone who can make it
redirect, would receive them. This session drops all of them on a redirect to another scheme, host or port.
"""

from __future__ import annotations

import requests

CREDENTIAL_HEADERS = ("Authorization", "Proxy-Authorization", "X-Emby-Token", "X-MediaBrowser-Token",
                      "X-Emby-Authorization", "x-goog-api-key", "X-Api-Key", "api-key", "Cookie")


class CredentialSafeSession(requests.Session):
    def rebuild_auth(self, prepared_request: requests.PreparedRequest, response: requests.Response) -> None:
        super().rebuild_auth(prepared_request, response)
        old_url, new_url = response.request.url, prepared_request.url
        if old_url and new_url and self.should_strip_auth(old_url, new_url):
            for header in CREDENTIAL_HEADERS:
                prepared_request.headers.pop(header, None)
