"""One error catalogue: every protocol error code has its HTTP status in
controllers/errors.py ``ERROR_STATUS``, a sentence in every UI language, an error
page heading for its status, and a mention in docs/protocol.md."""

from __future__ import annotations

from pathlib import Path

import pytest
import tornado.locale

from chatroom.config import LOCALE_DIR, available_locales
from chatroom.controllers import errors
from chatroom.controllers.errors import ERROR_STATUS, ChatError, code_for_status
from chatroom.views import strings

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture(scope="module", autouse=True)
def translations():
    tornado.locale.load_translations(str(LOCALE_DIR))


def every_error_class(cls: type[ChatError] = ChatError) -> list[type[ChatError]]:
    found = [cls]
    for sub in cls.__subclasses__():
        found += every_error_class(sub)
    return found


def test_every_error_class_has_a_catalogued_code_and_its_status():
    classes = [c for c in every_error_class() if c.__module__ == errors.__name__]
    assert len(classes) >= 9
    for cls in classes:
        assert cls.code in ERROR_STATUS, cls
        assert cls.status == ERROR_STATUS[cls.code], cls


def test_an_error_with_an_uncatalogued_code_is_refused_where_it_is_defined():
    with pytest.raises(TypeError, match="teapot"):
        type("TeapotError", (ChatError,), {"code": "teapot"})


@pytest.mark.parametrize("code", available_locales())
def test_every_code_has_a_sentence_in_every_language(code):
    locale = tornado.locale.get(code)
    messages = strings.error_messages(locale)
    assert sorted(messages) == sorted(ERROR_STATUS)
    english = strings.error_messages(tornado.locale.get("en_US"))
    for error_code, sentence in messages.items():
        assert sentence.strip(), error_code
        if code != "en_US":
            assert sentence != english[error_code], f"{error_code} is not translated"


@pytest.mark.parametrize("code", available_locales())
def test_every_status_has_an_error_page_heading(code):
    titles = strings.error_titles(tornado.locale.get(code))
    statuses = set(ERROR_STATUS.values())
    assert sorted(titles) == sorted({code_for_status(s) for s in statuses})


def test_an_http_status_maps_to_the_first_code_listed_for_it():
    assert code_for_status(400) == "bad_request"  # not too_long
    assert code_for_status(404) == "not_found"
    assert code_for_status(429) == "rate_limited"
    assert code_for_status(408) == errors.UNKNOWN_CODE == "error"
    for error_code, status in ERROR_STATUS.items():
        assert ERROR_STATUS[code_for_status(status)] == status, error_code


def test_every_code_is_documented_in_the_protocol():
    protocol = (DOCS / "protocol.md").read_text(encoding="utf-8")
    missing = [code for code in ERROR_STATUS if f"`{code}`" not in protocol]
    assert missing == []
