"""The official Python MCP SDK's OAuth client provider against the real stack (issue 15).

usage: py_oauth.py CONFIG_JSON
CONFIG_JSON: {"url": the deployment's MCP URL, "base": the stack's origin,
              "redirect_uri": "http://127.0.0.1:PORT/callback",
              "client_metadata_url": "https://localhost:PORT/…" or null (then Dynamic Client
              Registration), "session_cookie": a signed-in person's cw_session value}

What it does, with `mcp.client.auth.OAuthClientProvider` doing every OAuth step itself:
  initialize → 401 → discovery (RFC 9728, RFC 8414) → registration (the metadata document URL
  as client_id, or DCR) → authorization URL, which the redirect handler opens like a browser
  (GET, redirects not followed: the Worker answers 302 to the consent page), then consents
  as the signed-in person through the consent page's API (GET/POST /api/oauth/requests/{rid}
  with the cookie) → the callback handler hands back code, state and iss (the SDK checks
  state and RFC 9207 iss) → token → tools/call echo → the stored access token is marked
  expired, so the SDK refreshes before the next call → echo again → POST /oauth/revoke
  (the access token) → echo once more: the gateway's 401 sends the SDK back to discovery;
  the redirect handler refuses to authorize again, so the call fails.
Prints one JSON object: what each step saw, the HTTP exchanges (method, url, status,
WWW-Authenticate), and every secret (tokens, codes, verifiers) so the caller can search the
Worker's log for them. Exits non-zero only when the script itself breaks.
"""

import asyncio
import json
import sys
import time
from urllib.parse import parse_qs, urljoin, urlparse

import httpx2
from pydantic import AnyUrl

from mcp.client import ClientSession
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

from py_client import chain  # the same exception walk the plain client reports with


T0 = time.monotonic()


class ReauthRefused(Exception):
    """The redirect handler was asked to authorize again after revocation."""




def first(qs, name):
    v = qs.get(name)
    return v[0] if v else None


class Storage:
    """In-memory token storage that keeps every token set it was given."""

    def __init__(self):
        self.tokens = None
        self.client_info = None
        self.history = []

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken):
        self.tokens = tokens
        self.history.append(
            {
                "access_token": tokens.access_token,
                "refresh_token": tokens.refresh_token,
                "token_type": tokens.token_type,
                "expires_in": tokens.expires_in,
                "scope": tokens.scope,
            }
        )

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, info: OAuthClientInformationFull):
        self.client_info = info


async def main(cfg):
    url, base = cfg["url"], cfg["base"].rstrip("/")
    out = {"http": [], "authorize": [], "consent": [], "token_requests": [], "secrets": []}
    storage = Storage()
    reauth = {"refuse": False}
    pending = {}

    async def on_redirect(authorization_url):
        q = parse_qs(urlparse(authorization_url).query)
        out["authorize"].append({k: v[0] for k, v in q.items()})
        if reauth["refuse"]:
            raise ReauthRefused("asked to authorize again")
        async with httpx2.AsyncClient(follow_redirects=False, timeout=30) as h:
            r = await h.get(authorization_url)
            location = r.headers.get("location", "")
            step = {"authorize_status": r.status_code, "location": location}
            out["consent"].append(step)
            if r.status_code != 302:
                raise RuntimeError(f"authorize answered {r.status_code}: {r.text[:300]}")
            rid = first(parse_qs(urlparse(location).query), "request")
            cookie = {"cookie": f"cw_session={cfg['session_cookie']}"}
            shown = await h.get(f"{base}/api/oauth/requests/{rid}", headers=cookie)
            step["request"] = shown.json() if shown.status_code == 200 else {"status": shown.status_code, "body": shown.text}
            decided = await h.post(
                f"{base}/api/oauth/requests/{rid}", headers={**cookie, "origin": base}, json={"approve": True}
            )
            step["decision_status"] = decided.status_code
            if decided.status_code != 200:
                raise RuntimeError(f"consent answered {decided.status_code}: {decided.text[:300]}")
            pending["redirect_to"] = decided.json()["redirect_to"]
            step["redirect_to_host"] = urlparse(pending["redirect_to"]).netloc

    async def on_callback():
        q = parse_qs(urlparse(pending.pop("redirect_to")).query)
        code = first(q, "code")
        out["secrets"].append(code)
        out["consent"][-1]["callback"] = {"state": first(q, "state"), "iss": first(q, "iss"), "has_code": bool(code)}
        return AuthorizationCodeResult(code=code, state=first(q, "state"), iss=first(q, "iss"))

    metadata = OAuthClientMetadata(
        client_name="Catwalk Python SDK test",
        redirect_uris=[AnyUrl(cfg["redirect_uri"])],
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        token_endpoint_auth_method="none",
    )
    provider = OAuthClientProvider(
        server_url=url,
        client_metadata=metadata,
        storage=storage,
        redirect_handler=on_redirect,
        callback_handler=on_callback,
        client_metadata_url=cfg.get("client_metadata_url"),
    )

    async def on_request(request):
        if request.url.path.endswith("/oauth/token"):
            await request.aread()
            form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
            out["token_requests"].append({k: form[k] for k in ("grant_type", "client_id", "resource", "redirect_uri", "scope") if k in form})
            out["secrets"].extend(form[k] for k in ("code", "code_verifier", "refresh_token") if k in form)
        if request.url.path.endswith("/oauth/register"):
            await request.aread()
            out["registration_request"] = json.loads(request.content or b"{}")

    async def on_response(response):
        entry = {
            "method": response.request.method,
            "url": str(response.request.url),
            "status": response.status_code,
            "t": round(time.monotonic() - T0, 2),
        }
        www = response.headers.get("www-authenticate")
        if www:
            entry["www_authenticate"] = www
        if response.request.url.path.endswith(("/oauth/token", "/oauth/register")):
            await response.aread()
            entry["cache_control"] = response.headers.get("cache-control")
            if response.status_code >= 400:
                entry["body"] = response.text[:300]
            if response.request.url.path.endswith("/oauth/register"):
                out["registration_response"] = response.json() if response.status_code < 300 else response.text[:300]
        out["http"].append(entry)

    client = create_mcp_http_client(auth=provider)
    client.event_hooks["request"] = [on_request]
    client.event_hooks["response"] = [on_response]

    def text_of(result):
        return "".join(c.text for c in result.content if getattr(c, "type", "") == "text")

    try:
        async with client:
            async with streamable_http_client(url, http_client=client) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    out["client_id"] = storage.client_info.client_id if storage.client_info else None
                    out["echo1"] = text_of(await session.call_tool("echo", {"message": "python oauth one"}))
                    before = len(storage.history)
                    # The stored access token reads as expired: the SDK refreshes before sending.
                    provider.context.token_expiry_time = time.time() - 1
                    out["echo2"] = text_of(await session.call_tool("echo", {"message": "python oauth two"}))
                    out["refreshed"] = len(storage.history) > before
                    tokens = storage.tokens
                    meta = provider.context.oauth_metadata
                    revocation = str(meta.revocation_endpoint) if meta and meta.revocation_endpoint else urljoin(base, "/oauth/revoke")
                    async with httpx2.AsyncClient(timeout=30) as h:
                        r = await h.post(
                            revocation,
                            data={"token": tokens.access_token, "token_type_hint": "access_token", "client_id": out["client_id"]},
                        )
                    out["revoke"] = {"url": revocation, "status": r.status_code}
                    reauth["refuse"] = True
                    mark = len(out["http"])
                    try:
                        with_timeout = asyncio.wait_for(session.call_tool("echo", {"message": "after revocation"}), 20)
                        res = await with_timeout
                        out["after_revoke"] = {"failed": False, "text": text_of(res), "is_error": bool(res.is_error)}
                    except BaseException as e:  # noqa: BLE001 - the SDK reports the refusal many ways
                        if isinstance(e, KeyboardInterrupt):
                            raise
                        out["after_revoke"] = {"failed": True, "error": chain(e)[:2000], "reauthorization_refused": "ReauthRefused" in chain(e)}
                    out["after_revoke"]["http"] = out["http"][mark:]
    except BaseException as e:  # closing a session whose last call failed may raise too
        if "after_revoke" not in out or isinstance(e, KeyboardInterrupt):
            raise
        out["close_error"] = chain(e)[:400]
    out["tokens"] = storage.history
    out["secrets"].extend(t for h in storage.history for t in (h["access_token"], h["refresh_token"]) if t)
    return out


if __name__ == "__main__":
    config = json.loads(sys.argv[1])
    started = time.monotonic()
    try:
        result = asyncio.run(asyncio.wait_for(main(config), timeout=120))
    except BaseException as e:  # report what broke as JSON, then fail
        print(json.dumps({"error": chain(e)[:2000]}))
        sys.exit(1)
    result["seconds"] = round(time.monotonic() - started, 2)
    print(json.dumps(result))
