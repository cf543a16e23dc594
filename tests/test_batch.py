"""run_batch / arun_batch, batch_mode and raise_single_error (API.md §3) on real SQLite."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import decimal
import json
import sqlite3
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.datastructures import QueryParams
from werkzeug.datastructures import MultiDict

from restfault import (
    BadRequestException,
    BatchException,
    ConflictResourceException,
    RestException,
    arun_batch,
    batch_mode,
    query_param,
    raise_single_error,
    render_error,
    run_batch,
)
from tests.harness import MakeHarness
from tests.tables import STYLE_NAMES, FrozenTableGone, StyleName

MODES = ["halt", "continue", "rollback"]
SEEDED = "ada@example.com"


def unique_constraint(exc: sqlite3.IntegrityError) -> RestException:
    return ConflictResourceException(str(exc), code="UNIQUE_CONSTRAINT")


TRANSLATE: dict[type[BaseException], Callable[[Any], RestException]] = {
    sqlite3.IntegrityError: unique_constraint
}


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "batch.sqlite3"
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("CREATE TABLE contacts (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE)")
        conn.execute("INSERT INTO contacts (email) VALUES (?)", (SEEDED,))
    return path


@pytest.fixture
def conn(db_path: Path) -> Iterator[sqlite3.Connection]:
    with contextlib.closing(sqlite3.connect(db_path)) as connection:
        yield connection


def committed(db_path: Path) -> list[str]:
    """The emails another connection sees: what the batch committed."""
    with contextlib.closing(sqlite3.connect(db_path)) as other:
        rows = other.execute("SELECT email FROM contacts ORDER BY id").fetchall()
    return [email for (email,) in rows if email != SEEDED]


def inserter(conn: sqlite3.Connection) -> Callable[[Any], int]:
    def insert(email: Any) -> int:
        if not isinstance(email, str):
            raise BadRequestException(
                "'email' is required",
                code="VALIDATION_ERROR",
                context={"field": "email", "error": "is required"},
            )
        cursor = conn.execute("INSERT INTO contacts (email) VALUES (?)", (email,))
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    return insert


def run(conn: sqlite3.Connection, items: list[Any], mode: Any) -> list[int]:
    return run_batch(
        items, inserter(conn), mode=mode, transaction=lambda: conn, translate=TRANSLATE
    )


# -- outcomes -------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_empty_batch(conn: sqlite3.Connection, db_path: Path, mode: str) -> None:
    calls: list[Any] = []
    assert run_batch([], calls.append, mode=mode, transaction=lambda: conn) == []  # type: ignore[arg-type]
    assert calls == []
    assert committed(db_path) == []


@pytest.mark.parametrize("mode", MODES)
def test_all_succeed(conn: sqlite3.Connection, db_path: Path, mode: str) -> None:
    ids = run(conn, ["a@x", "b@x", "c@x"], mode)
    assert ids == [2, 3, 4]
    assert committed(db_path) == ["a@x", "b@x", "c@x"]


@pytest.mark.parametrize("failing", [0, 1, 2], ids=["first", "middle", "last"])
@pytest.mark.parametrize("mode", MODES)
def test_one_item_fails(conn: sqlite3.Connection, db_path: Path, mode: str, failing: int) -> None:
    items = ["a@x", "b@x", "c@x"]
    items[failing] = SEEDED
    with pytest.raises(BatchException) as info:
        run(conn, items, mode)
    context = info.value.context
    assert context["errors"] == [
        {
            "index": failing,
            "status": 409,
            "code": "UNIQUE_CONSTRAINT",
            "message": "UNIQUE constraint failed: contacts.email",
        }
    ]
    good = [email for email in items if email != SEEDED]
    if mode == "halt":  # the items before the failure stay done
        assert committed(db_path) == items[:failing]
        assert context["resource"] == [*range(2, 2 + failing), None]
        assert "rolled_back" not in context
    elif mode == "continue":  # every other item is done
        assert committed(db_path) == good
        ids = iter(range(2, 4))
        assert context["resource"] == [None if i == failing else next(ids) for i in range(3)]
    else:  # nothing stays
        assert committed(db_path) == []
        assert context["rolled_back"] is True
        assert "resource" not in context
    assert info.value.rolled_back is (mode == "rollback")


def test_continue_reports_every_failure_in_index_order(
    conn: sqlite3.Connection, db_path: Path
) -> None:
    items = [SEEDED, "a@x", None, "a@x", "b@x"]
    with pytest.raises(BatchException) as info:
        run(conn, items, "continue")
    exc = info.value
    assert (exc.status_code, exc.code, exc.message) == (400, "BATCH_ERROR", "Batch operation error")
    assert exc.context == {
        "errors": [
            {
                "index": 0,
                "status": 409,
                "code": "UNIQUE_CONSTRAINT",
                "message": "UNIQUE constraint failed: contacts.email",
            },
            {
                "index": 2,
                "status": 400,
                "code": "VALIDATION_ERROR",
                "message": "'email' is required",
                "context": {"field": "email", "error": "is required"},
            },
            {
                "index": 3,
                "status": 409,
                "code": "UNIQUE_CONSTRAINT",
                "message": "UNIQUE constraint failed: contacts.email",
            },
        ],
        "resource": [None, 2, None, None, 3],
    }
    assert committed(db_path) == ["a@x", "b@x"]


def test_halt_commits_each_item_so_a_later_rollback_keeps_them(
    conn: sqlite3.Connection, db_path: Path
) -> None:
    with pytest.raises(BatchException):
        run(conn, ["a@x", SEEDED], "halt")
    assert not conn.in_transaction
    with pytest.raises(BatchException):
        run(conn, ["b@x", SEEDED], "rollback")
    assert committed(db_path) == ["a@x"]


def test_halt_undoes_the_failed_items_own_partial_work(
    conn: sqlite3.Connection, db_path: Path
) -> None:
    def insert_twice(email: str) -> int:
        inserter(conn)(email + ".first")
        return inserter(conn)(email)

    with pytest.raises(BatchException):
        run_batch(["a@x", SEEDED], insert_twice, transaction=lambda: conn, translate=TRANSLATE)
    # the failing item's own first insert went with it; the item before it stayed
    assert committed(db_path) == ["a@x.first", "a@x"]


def test_without_a_transaction_halt_and_continue_still_run(conn: sqlite3.Connection) -> None:
    with pytest.raises(BatchException) as info:
        run_batch(["a@x", SEEDED, "b@x"], inserter(conn), mode="continue", translate=TRANSLATE)
    assert info.value.context["resource"] == [2, None, 3]


def test_bad_arguments_are_refused(conn: sqlite3.Connection) -> None:
    with pytest.raises(ValueError, match="transaction"):
        run_batch(["a@x"], inserter(conn), mode="rollback")
    with pytest.raises(ValueError, match="mode"):
        run_batch(["a@x"], inserter(conn), mode="sometimes")  # type: ignore[arg-type]


# -- what is not a failure -------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_an_untranslated_exception_propagates_unchanged(
    conn: sqlite3.Connection, db_path: Path, mode: Any
) -> None:
    bug = ZeroDivisionError("a bug, not a failed item")
    insert = inserter(conn)

    def operation(email: str) -> int:
        if email == "boom":
            raise bug
        return insert(email)

    with pytest.raises(ZeroDivisionError) as info:
        run_batch(["a@x", "boom", "b@x"], operation, mode=mode, transaction=lambda: conn)
    assert info.value is bug
    assert committed(db_path) == ([] if mode == "rollback" else ["a@x"])


def test_an_integrity_error_without_a_translation_propagates(conn: sqlite3.Connection) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        run_batch([SEEDED], inserter(conn), transaction=lambda: conn)


# -- async -------------------------------------------------------------------------------------


class AsyncTransaction:
    """An async context manager over a sqlite3 connection: commit, or roll back."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.entered = 0

    async def __aenter__(self) -> None:
        self.entered += 1

    async def __aexit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is None:
            self.conn.commit()
        else:
            self.conn.rollback()


def async_inserter(conn: sqlite3.Connection) -> Callable[[Any], Any]:
    insert = inserter(conn)

    async def ainsert(email: Any) -> int:
        await asyncio.sleep(0)
        return insert(email)

    return ainsert


@pytest.mark.parametrize("transaction_kind", ["sync", "async", "awaitable"])
@pytest.mark.parametrize("mode", MODES)
def test_arun_batch(
    conn: sqlite3.Connection, db_path: Path, mode: Any, transaction_kind: str
) -> None:
    manager = AsyncTransaction(conn)

    async def opened() -> AsyncTransaction:
        return manager

    transaction: Callable[[], Any] = {
        "sync": lambda: conn,
        "async": lambda: manager,
        "awaitable": opened,
    }[transaction_kind]

    async def main() -> None:
        ok = await arun_batch(
            ["a@x"], async_inserter(conn), mode=mode, transaction=transaction, translate=TRANSLATE
        )
        assert ok == [2]
        with pytest.raises(BatchException) as info:
            await arun_batch(
                ["b@x", SEEDED, "c@x"],
                async_inserter(conn),
                mode=mode,
                transaction=transaction,
                translate=TRANSLATE,
            )
        assert [e["index"] for e in info.value.context["errors"]] == [1]

    asyncio.run(main())
    expected = {"halt": ["a@x", "b@x"], "continue": ["a@x", "b@x", "c@x"], "rollback": ["a@x"]}
    assert committed(db_path) == expected[mode]
    if transaction_kind != "sync":
        assert manager.entered > 0


def test_arun_batch_without_a_transaction_and_an_untranslated_exception() -> None:
    async def operation(item: int) -> int:
        if item == 2:
            raise KeyError(item)
        return item * 10

    async def main() -> None:
        assert await arun_batch([1, 3], operation) == [10, 30]
        with pytest.raises(KeyError):
            await arun_batch([1, 2, 3], operation, mode="continue")

    asyncio.run(main())


# -- translations that apply by themselves inside a request -------------------------------------


def test_every_adapters_translations_apply_inside_its_requests(
    harness: MakeHarness, db_path: Path
) -> None:
    app = harness(style="bkend")

    @app.route("/contacts")
    def create() -> object:
        with contextlib.closing(sqlite3.connect(db_path)) as conn:
            items = ["new@example.com", SEEDED]
            return {"resource": run_batch(items, inserter(conn), transaction=lambda: conn)}

    app.restfault.translate(sqlite3.IntegrityError)(unique_constraint)

    reply = app.get("/contacts")

    assert reply.status == 400
    body = reply.json()
    assert body["error"] == "BATCH_ERROR"
    assert [error["code"] for error in body["context"]["errors"]] == ["UNIQUE_CONSTRAINT"]
    assert body["context"]["resource"] == [2, None]
    assert committed(db_path) == ["new@example.com"]


def test_the_starlette_adapters_translations_apply_inside_its_handlers(db_path: Path) -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from restfault.starlette import RestFault

    def create(request: Request) -> JSONResponse:  # sync: Starlette runs it in a thread
        with contextlib.closing(sqlite3.connect(db_path)) as conn:
            items = request.query_params.getlist("email")
            ids = run_batch(items, inserter(conn), transaction=lambda: conn)
        return JSONResponse({"resource": ids})

    async def acreate(request: Request) -> JSONResponse:
        with contextlib.closing(sqlite3.connect(db_path)) as conn:
            items = request.query_params.getlist("email")
            ids = await arun_batch(items, async_inserter(conn), transaction=lambda: conn)
        return JSONResponse({"resource": ids})

    app = Starlette(routes=[Route("/sync", create), Route("/async", acreate)])
    restfault = RestFault(app, style="bkend")
    restfault.translate(sqlite3.IntegrityError)(unique_constraint)
    with TestClient(app) as client:
        for path in ("/sync", "/async"):
            response = client.get(path, params={"email": [f"{path}@x", SEEDED]})
            assert response.status_code == 400, response.text
            body = response.json()
            assert body["error"] == "BATCH_ERROR"
            assert body["context"]["errors"][0]["code"] == "UNIQUE_CONSTRAINT"
    assert committed(db_path) == ["/sync@x", "/async@x"]

    # Outside a request the registry is not active: the IntegrityError is a bug again...
    with (
        contextlib.closing(sqlite3.connect(db_path)) as conn,
        pytest.raises(sqlite3.IntegrityError),
    ):
        run_batch([SEEDED], inserter(conn))
    # ...unless the adapter is passed in.
    with (
        contextlib.closing(sqlite3.connect(db_path)) as conn,
        pytest.raises(BatchException) as info,
    ):
        run_batch([SEEDED], inserter(conn), translate=restfault)
    assert info.value.errors[0]["code"] == "UNIQUE_CONSTRAINT"


def test_the_flask_adapters_translations_apply_inside_its_views(db_path: Path) -> None:
    from flask import Flask, request

    from restfault.flask import RestFault

    app = Flask(__name__)
    restfault = RestFault(app, style="problem")
    restfault.translate(sqlite3.IntegrityError)(unique_constraint)

    @app.post("/contacts")
    def create() -> dict[str, Any]:
        with contextlib.closing(sqlite3.connect(db_path)) as conn:
            records = request.get_json()
            try:
                ids = run_batch(records, inserter(conn), transaction=lambda: conn)
            except BatchException as exc:
                raise_single_error(exc, len(records))
        return {"resource": ids}

    client = app.test_client()
    response = client.post("/contacts", json=["a@x", SEEDED, "b@x"])
    assert response.status_code == 400
    problem = response.get_json()
    assert problem["code"] == "BATCH_ERROR"
    assert problem["errors"][0]["code"] == "UNIQUE_CONSTRAINT"
    assert problem["resource"] == [2, None]

    response = client.post("/contacts", json=[SEEDED])
    assert response.status_code == 409
    assert response.get_json()["code"] == "UNIQUE_CONSTRAINT"
    assert committed(db_path) == ["a@x"]


def test_a_mapping_adds_to_the_active_registry(conn: sqlite3.Connection) -> None:
    class Mine(Exception):
        pass

    def operation(item: str) -> str:
        if item == "mine":
            raise Mine
        inserter(conn)(item)
        return item

    translate: dict[type[BaseException], Callable[[Any], RestException]] = {
        **TRANSLATE,
        Mine: lambda exc: RestException("mine", code="MINE", status_code=418),
    }
    with pytest.raises(BatchException) as info:
        run_batch([SEEDED, "mine"], operation, mode="continue", translate=translate)
    assert [(e["status"], e["code"]) for e in info.value.errors] == [
        (409, "UNIQUE_CONSTRAINT"),
        (418, "MINE"),
    ]


# -- rendering --------------------------------------------------------------------------------

ODD_RESULTS = [
    datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.timezone.utc),
    datetime.date(2024, 5, 6),
    decimal.Decimal("12.50"),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    b"raw bytes",
]
ODD_AS_STRINGS = [
    "2024-05-06T07:08:09+00:00",
    "2024-05-06",
    "12.50",
    "12345678-1234-5678-1234-567812345678",
    "raw bytes",
]


def odd_batch() -> BatchException:
    def operation(index: int) -> Any:
        if index == len(ODD_RESULTS):
            raise ConflictResourceException("taken", code="UNIQUE_CONSTRAINT", context={"n": 1})
        return ODD_RESULTS[index]

    with pytest.raises(BatchException) as info:
        run_batch(range(len(ODD_RESULTS) + 1), operation)
    return info.value


@pytest.mark.parametrize("style", STYLE_NAMES)
def test_the_envelope_in_every_style(style: StyleName) -> None:
    rendered = render_error(odd_batch(), style=style)
    assert rendered.status == 400
    body = json.loads(rendered.body)
    expected_errors = [
        {
            "index": 5,
            "status": 409,
            "code": "UNIQUE_CONSTRAINT",
            "message": "taken",
            "context": {"n": 1},
        }
    ]
    resource = [*ODD_AS_STRINGS, None]
    if style == "dreamfactory":
        assert rendered.header("Content-Type") == "application/json"
        assert body == {
            "error": {
                "code": 400,
                "message": "Batch operation error",
                "context": {"errors": expected_errors, "resource": resource},
            }
        }
    elif style == "bkend":
        assert rendered.header("Content-Type") == "application/json"
        assert body == {
            "error": "BATCH_ERROR",
            "message": "Batch operation error",
            "context": {"errors": expected_errors, "resource": resource},
        }
    else:
        assert rendered.header("Content-Type") == "application/problem+json"
        assert body == {
            "type": "about:blank",
            "title": "Bad Request",
            "status": 400,
            "detail": "Batch operation error",
            "code": "BATCH_ERROR",
            "errors": expected_errors,
            "resource": resource,
        }


def test_a_rolled_back_batch_renders_without_resource(conn: sqlite3.Connection) -> None:
    with pytest.raises(BatchException) as info:
        run(conn, ["a@x", SEEDED], "rollback")
    body = json.loads(render_error(info.value, style="problem").body)
    assert body["rolled_back"] is True
    assert "resource" not in body
    assert [e["index"] for e in body["errors"]] == [1]


# -- batch_mode and raise_single_error -----------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "mode"),
    [
        ({}, "halt"),
        ({"continue": "true"}, "continue"),
        ({"continue": "1"}, "continue"),
        ({"rollback": "true"}, "rollback"),
        ({"rollback": "TRUE"}, "rollback"),
        ({"continue": "false", "rollback": "0"}, "halt"),
        ({"continue": "false", "rollback": "true"}, "rollback"),
        (MultiDict([("continue", "true")]), "continue"),
        # A repeated flag whose values agree (by meaning) asks for one thing.
        (MultiDict([("rollback", "true"), ("rollback", "1")]), "rollback"),
        (QueryParams("rollback=TRUE&rollback=yes"), "rollback"),
        (QueryParams("continue=0&continue=false"), "halt"),
        ({"continue": ["on", "true"]}, "continue"),
        ({"rollback": []}, "halt"),
    ],
)
def test_batch_mode(params: Any, mode: str) -> None:
    assert batch_mode(params) == mode


# Starlette takes the last of a repeated parameter, werkzeug the first: they would disagree.
REPEATED = "rollback=true&rollback=false"


@pytest.mark.parametrize(
    ("params", "name"),
    [
        (MultiDict(urllib.parse.parse_qsl(REPEATED)), "rollback"),
        (QueryParams(REPEATED), "rollback"),
        (urllib.parse.parse_qs(REPEATED), "rollback"),
        (QueryParams("rollback=false&rollback=true"), "rollback"),
        (QueryParams("continue=1&continue="), "continue"),
        (QueryParams("continue=true&rollback=false&rollback=1"), "rollback"),
    ],
    ids=["multidict", "query-params", "parse-qs", "reversed", "empty-value", "with-continue"],
)
def test_a_flag_repeated_with_values_that_disagree_is_a_bad_request(params: Any, name: str) -> None:
    with pytest.raises(BadRequestException) as info:
        batch_mode(params)
    exc = info.value
    assert (exc.status_code, exc.code, exc.context) == (400, "BAD_REQUEST", {"parameter": name})
    assert exc.message == (
        f"Query parameter '{name}' is repeated with different values; send it once"
    )


@pytest.mark.parametrize(
    ("params", "value"),
    [
        ({}, None),
        ({"filter": "id=1"}, "id=1"),
        ({"filter": ["id=1"]}, "id=1"),
        ({"filter": 7}, "7"),
        (MultiDict([("filter", "id=1"), ("filter", "id=1")]), "id=1"),
        (QueryParams("filter=id%3D1&filter=id%3D1&other=2"), "id=1"),
        (QueryParams("filter="), ""),
    ],
)
def test_query_param(params: Any, value: str | None) -> None:
    assert query_param(params, "filter") == value


@pytest.mark.parametrize(
    "params",
    [
        MultiDict([("filter", "id=1"), ("filter", "id=2")]),
        QueryParams("filter=id%3D1&filter=id%3D2"),
        {"filter": ["id=1", "id=2"]},
        QueryParams("filter=id%3D1&filter="),
    ],
    ids=["multidict", "query-params", "mapping", "empty-value"],
)
def test_query_param_repeated_with_values_that_disagree(params: Any) -> None:
    with pytest.raises(BadRequestException) as info:
        query_param(params, "filter", code="INVALID_FILTER")
    exc = info.value
    assert (exc.status_code, exc.code, exc.context) == (
        400,
        "INVALID_FILTER",
        {"parameter": "filter"},
    )
    assert exc.message == "Query parameter 'filter' is repeated with different values; send it once"


def test_continue_and_rollback_together_is_a_bad_request() -> None:
    with pytest.raises(BadRequestException) as info:
        batch_mode({"continue": "true", "rollback": "true"})
    exc = info.value
    assert (exc.status_code, exc.code) == (400, "BAD_REQUEST")
    assert exc.message == (
        "continue=true and rollback=true cannot be combined: rollback undoes the whole "
        "batch at the first failure, continue keeps going past it"
    )


@pytest.mark.parametrize("mode", MODES)
def test_a_single_item_batch_raises_the_items_own_error(
    conn: sqlite3.Connection, mode: str
) -> None:
    with pytest.raises(BatchException) as batch:
        run(conn, [SEEDED], mode)
    with pytest.raises(ConflictResourceException) as info:
        raise_single_error(batch.value, 1)
    assert info.value.code == "UNIQUE_CONSTRAINT"
    assert isinstance(info.value.__cause__, sqlite3.IntegrityError)  # the cause is kept

    with pytest.raises(BatchException) as batch:
        run(conn, [None], mode)
    with pytest.raises(BadRequestException) as validation:
        raise_single_error(batch.value, 1)
    assert validation.value.code == "VALIDATION_ERROR"
    assert validation.value.context == {"field": "email", "error": "is required"}


def test_a_larger_batch_raises_the_batch_error(conn: sqlite3.Connection) -> None:
    with pytest.raises(BatchException) as batch:
        run(conn, [SEEDED, "a@x"], "continue")
    with pytest.raises(BatchException) as info:
        raise_single_error(batch.value, 2)
    assert info.value is batch.value


def test_a_batch_error_built_by_hand_is_raised_as_it_is() -> None:
    exc = BatchException([{"index": 0, "message": "Duplicate key value"}])
    with pytest.raises(BatchException) as info:
        raise_single_error(exc, 1)
    assert info.value is exc
    assert render_error(exc).status == 400


def test_a_frozen_items_error_is_raised_with_the_batch_as_its_cause() -> None:
    def insert(item: int) -> int:
        raise FrozenTableGone()

    with pytest.raises(BatchException) as batch:
        run_batch([1], insert)
    with pytest.raises(FrozenTableGone) as info:
        raise_single_error(batch.value, 1)
    assert info.value.__cause__ is batch.value


def test_an_items_context_json_cannot_hold_is_left_out_of_its_error_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    circular: dict[str, Any] = {}
    circular["self"] = circular

    def check(item: int) -> int:
        if item == 0:
            raise BadRequestException("loops", context=circular)
        if item == 1:
            raise BadRequestException("fine", context={"field": "email"})
        return item

    with pytest.raises(BatchException) as info:
        run_batch([0, 1, 2], check, mode="continue")

    assert json.loads(render_error(info.value, style="bkend").body)["context"] == {
        "errors": [
            {"index": 0, "status": 400, "code": "BAD_REQUEST", "message": "loops"},
            {
                "index": 1,
                "status": 400,
                "code": "BAD_REQUEST",
                "message": "fine",
                "context": {"field": "email"},
            },
        ],
        "resource": [None, None, 2],
    }
    assert "a batch item's error context could not be encoded; dropped" in caplog.text
