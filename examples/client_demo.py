"""A Python client of the example API, written with ``restfault.client``.

    python examples/client_demo.py [BASE_URL]       # default: http://127.0.0.1:8000

against an example app started with ``RESTFAULT_STYLE=bkend RESTFAULT_EMAIL_LIMITS=1/2seconds
EXAMPLE_SESSION_TTL=2`` (``make demo-client`` starts one so, runs this and stops it). It
logs in, catches typed errors (a ``NotFoundException`` with code ``TABLE_NOT_FOUND``, a
``BatchException`` with its per-index errors), refreshes an expired session token, and
lets a 429 on ``/api/v2/email`` be waited out through ``Retry-After``. Each step prints
what happened; the exit status is 0 when every step behaved as the API promises.
"""

from __future__ import annotations

import logging
import sys
import time
import uuid
from typing import Any

import httpx

from restfault import BatchException, NotFoundException, UnauthorizedException
from restfault.client import Client, Retry

failures: list[str] = []


def check(condition: bool, what: str) -> None:
    print(f"  {'ok' if condition else 'FAILED'}: {what}")
    if not condition:
        failures.append(what)


def wait_until_up(client: Client, seconds: float = 15.0) -> None:
    """The app may still be starting (``make demo-client`` starts it just before)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            client.get("/api/v2/health")
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


class Session:
    """A logged-in user: the session token, refreshed when the API says it expired."""

    def __init__(self, client: Client, email: str, password: str) -> None:
        self.client = client
        answer = client.post("/api/v2/user/session", json={"email": email, "password": password})
        tokens: dict[str, Any] = answer.json()
        self.token: str = tokens["session_token"]
        self.refresh_token: str = tokens["refresh_token"]
        self.expires_in: int = tokens["expires_in"]
        self.refreshed = 0

    def get(self, path: str) -> Any:
        try:
            return self._get(path)
        except UnauthorizedException as exc:
            if exc.code != "TOKEN_EXPIRED":
                raise
            print(f"  {path}: 401 {exc.code} ({exc.message}); refreshing the session token")
            answer = self.client.post(
                "/api/v2/auth/refresh", json={"refreshToken": self.refresh_token}
            )
            self.token = answer.json()["accessToken"]
            self.refreshed += 1
            return self._get(path)

    def _get(self, path: str) -> Any:
        return self.client.get(path, headers={"Authorization": f"Bearer {self.token}"}).json()


def main(base_url: str) -> int:
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    with Client(
        base_url=base_url, headers={"X-API-Key": "pk_demo"}, retry=Retry(sleep=sleep), timeout=10
    ) as client:
        wait_until_up(client)

        print("1. log in")
        session = Session(client, "ada@example.com", "lovelace")
        check(session.get("/api/v2/user/profile")["name"] == "Ada", "logged in as Ada")
        if session.expires_in > 10:
            print(f"The session lasts {session.expires_in} s: start the app with", __doc__)
            return 2

        print("2. a table that does not exist")
        try:
            client.get("/api/v2/db/_table/Contacts")
        except NotFoundException as exc:
            print(f"  NotFoundException {exc.code}: {exc.message}")
            check(exc.code == "TABLE_NOT_FOUND", "NotFoundException with code TABLE_NOT_FOUND")
        else:
            check(False, "GET _table/Contacts raised NotFoundException")

        print("3. a batch with two bad records of three (continue=true)")
        records = [
            {"name": "Ada", "email": "ada@example.com"},  # already stored
            {"name": "Barbara"},  # no email
            {"name": "Donald", "email": f"donald-{uuid.uuid4().hex[:8]}@example.com"},
        ]
        try:
            client.post("/api/v2/db/_table/contacts?continue=true", json={"resource": records})
        except BatchException as exc:
            for index, cause in sorted(exc.causes.items()):
                print(f"  record {index}: {type(cause).__name__} {cause.code}: {cause.message}")
            codes = [(error["index"], error["code"]) for error in exc.errors]
            check(codes == [(0, "UNIQUE_CONSTRAINT"), (1, "VALIDATION_ERROR")], "errors by index")
            kept = exc.resource[2] if exc.resource else None
            check(isinstance(kept, dict) and "id" in kept, f"record 2 stored anyway: {kept}")
        else:
            check(False, "the batch raised BatchException")

        print(f"4. the session token expires after {session.expires_in} s")
        time.sleep(session.expires_in + 0.5)
        profile = session.get("/api/v2/user/profile")
        check(session.refreshed == 1, "the expired token was refreshed once")
        check(profile == {"email": "ada@example.com", "name": "Ada"}, f"profile: {profile}")

        print("5. two emails in a row, one allowed per 2 seconds")
        message = {"to": "grace@example.com", "subject": "Hi"}
        waits.clear()
        answers = [client.post("/api/v2/email", json=message).json() for _ in range(2)]
        check(answers == [{"queued": True}] * 2, "both emails queued")
        check(len(waits) == 1 and 1 <= waits[0] <= 2, f"waited Retry-After once: {waits} s")

    print("every step behaved" if not failures else f"{len(failures)} step(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    logging.basicConfig(stream=sys.stdout, format="  %(levelname)s %(name)s: %(message)s")
    logging.getLogger("restfault.client").setLevel(logging.INFO)  # each wait, and why
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000"))
