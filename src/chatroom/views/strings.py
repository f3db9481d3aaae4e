"""The translated texts of the UI that are not in a template: what each protocol error
code says to a person, the short title of each error page, the account forms' errors,
and the strings the browser client shows. Error texts are keyed by the codes of
controllers/errors.py ``ERROR_STATUS``; tests/unit/test_error_catalogue.py checks that
every code has one."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import tornado.locale

from chatroom.config import Config
from chatroom.views.room_strings import room_settings_strings


def error_messages(locale: tornado.locale.Locale, **params: Any) -> dict[str, str]:
    """The sentence each error code shows, in ``locale``; ``max_chars`` for ``too_long``."""
    _ = locale.translate
    max_chars = params.get("max_chars", Config.max_message_chars)
    return {
        "bad_request": _("That was not a valid request."),
        "too_long": _("The message is too long: at most %(max)s characters.") % {"max": max_chars},
        "rate_limited": _("You are sending messages too fast; wait a moment."),
        "not_found": _("There is no such room, user or page."),
        "forbidden": _("This is not open to you, or the page expired: reload and try again."),
        "unavailable": _("The server cannot store messages right now; try again shortly."),
        "conflict": _("That name is taken."),
        "unauthorized": _("You are signed out; log in again."),
        "too_large": _("That is too large to send."),
        "method_not_allowed": _("That is not possible here."),
        "internal": _("Something went wrong on the server."),
    }


def unknown_error(locale: tornado.locale.Locale, code: str) -> str:
    """The sentence of a code ``error_messages`` does not know."""
    return locale.translate("Something went wrong (%(code)s).") % {"code": code}


def error_titles(locale: tornado.locale.Locale) -> dict[str, str]:
    """The error page's heading for each code an HTTP status stands for
    (``code_for_status``): ``404 · Not found``."""
    _ = locale.translate
    return {
        "bad_request": _("Bad request"),
        "unauthorized": _("Not signed in"),
        "forbidden": _("Forbidden"),
        "not_found": _("Not found"),
        "method_not_allowed": _("Not allowed"),
        "conflict": _("Conflict"),
        "too_large": _("Too large"),
        "rate_limited": _("Too many requests"),
        "internal": _("Server error"),
        "unavailable": _("Unavailable"),
    }


def form_errors(locale: tornado.locale.Locale) -> dict[str, str]:
    """What the login and register forms say for the codes they explain their own way."""
    _ = locale.translate
    return {
        "unauthorized": _("Log in failed: wrong username or password."),
        "bad_request": _(
            "Choose a username of 1 to 32 letters, digits, _ . or -"
            " and a password of 8 to 256 characters."
        ),
        "conflict": _("That username is taken; choose another one."),
    }


def signup_refusal(locale: tornado.locale.Locale, mode: str) -> str:
    """What the register form says when ``--registration`` refuses (SPEC §6)."""
    _ = locale.translate
    if mode == "closed":
        return _("Registration is closed: ask the person who runs this chat for an account.")
    return _(
        "Registering needs a valid invite code. This one is unknown, used up,"
        " expired or revoked: ask a site admin for a new invite link."
    )


def invite_notice(locale: tornado.locale.Locale, expires: datetime | None) -> str:
    """What the register form says about the invite code it was opened with."""
    _ = locale.translate
    if expires is None:
        return signup_refusal(locale, "invite")
    when = expires.strftime("%Y-%m-%d %H:%M UTC")
    return _("Your invite is valid until %(time)s.") % {"time": when}


def client_strings(locale: tornado.locale.Locale, max_chars: int) -> dict[str, Any]:
    """The strings the browser client shows (static/js/i18n.js), error texts included."""
    _ = locale.translate
    return {
        "state_connecting": _("connecting…"),
        "state_connected": _("connected"),
        "state_reconnecting": _("reconnecting in %(seconds)ss"),
        "state_offline": _("offline"),
        "typing_one": _("%(user)s is typing…"),
        "typing_two": _("%(user)s and %(other)s are typing…"),
        "typing_many": _("Several people are typing…"),
        "sending": _("sending…"),
        "not_sent": _("not sent"),
        "retry": _("Retry"),
        "discard": _("Discard"),
        "gap_one": _(
            "%(count)s older message is no longer kept.",
            "%(count)s older messages are no longer kept.",
            1,
        ),
        "gap_other": _(
            "%(count)s older message is no longer kept.",
            "%(count)s older messages are no longer kept.",
            2,
        ),
        "new_messages": _("New messages"),
        "you": _("(you)"),
        "chat_with": _("Chat with %(user)s"),
        "unread": _("%(count)s unread"),
        "room_exists": _('A room named "%(name)s" already exists.'),
        "create_failed": _("Could not create the room."),
        "unreachable": _("Could not reach the server; try again."),
        "dismiss": _("Dismiss"),
        "retrying": _("Retrying in %(seconds)ss."),
        "notify_enable": _("Enable notifications"),
        "notify_on": _("Notifications: on"),
        "notify_off": _("Notifications: off"),
        "notify_blocked": _("Notifications are blocked by the browser"),
        "notify_room": _("%(user)s in #%(room)s"),
        "notify_dm": _("%(user)s (direct message)"),
        "announce": _("%(user)s: %(text)s"),
        "announce_room": _("%(user)s in %(room)s: %(text)s"),
        "error": _("Something went wrong (%(code)s)."),
        # files (SPEC §9)
        "attach": _("Attach files"),
        "attachments": _("Files to send"),
        "uploading": _("uploading… %(percent)s%"),
        "uploaded": _("ready to send"),
        "upload_failed": _("upload failed"),
        "upload_too_large": _("%(name)s is larger than %(max)s."),
        "cancel_upload": _("Cancel the upload of %(name)s"),
        "remove_file": _("Remove %(name)s"),
        "retry_upload": _("Retry"),
        "wait_for_uploads": _("Wait until the files are uploaded."),
        "drop_files": _("Drop files to attach them"),
        "open_image": _("%(name)s (open full size)"),
        "download_file": _("Download %(name)s, %(size)s"),
        # the archive (SPEC §7): older pages and search
        "loading_older": _("Loading older messages…"),
        "show_newer": _("Show newer messages"),
        "searching": _("Searching…"),
        "search_results": _("%(count)s results"),
        "search_none": _("No messages found."),
        # messages people work with (SPEC §5, issue 12)
        "message_actions": _("Actions"),
        "reply": _("Reply"),
        "react": _("React"),
        "edit": _("Edit"),
        "delete": _("Delete"),
        "delete_confirm": _("Delete this message?"),
        "cancel": _("Cancel"),
        "save": _("Save"),
        "edit_label": _("Edit text"),
        "edit_hint": _("Enter to save, Esc to cancel."),
        "edited": _("(edited)"),
        "edited_at": _("edited %(time)s"),
        "message_deleted": _("message deleted"),
        "reply_unknown": _("The original message is not available."),
        "reply_not_loaded": _("The original message is not loaded any more."),
        "reaction_label": _("%(emoji)s %(count)s: %(users)s"),
        "emoji_picker": _("Choose an emoji"),
        "emoji_recent": _("Recently used"),
        "emoji_all": _("Emoji"),
        "action_offline": _("Not connected: try again when the connection is back."),
        "mentions_count": _("%(count)s mentions of you"),
        "notify_mention": _("%(user)s mentioned you in #%(room)s"),
        # blocking (SPEC §6, issue 13)
        "block": _("Block %(user)s"),
        "unblock": _("Unblock %(user)s"),
        "blocked_now": _("You blocked %(user)s: their messages are hidden."),
        "unblocked_now": _("You unblocked %(user)s."),
        "errors": error_messages(locale, max_chars=max_chars),
        **room_settings_strings(locale),  # issue 13: room moderation
    }
