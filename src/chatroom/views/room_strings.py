"""The browser strings of room moderation (issue 13): the room settings panel, the
lock of private rooms, the notice when one is removed from a room and the composer's
refusals. ``strings.client_strings`` merges them into the page's strings."""

from __future__ import annotations

import tornado.locale


def room_settings_strings(locale: tornado.locale.Locale) -> dict[str, str]:
    """The strings static/js/room_settings.js and room_status.js show, in ``locale``."""
    _ = locale.translate
    return {
        "rs_private": _("Private room"),
        "rs_role_owner": _("owner"),
        "rs_role_moderator": _("moderator"),
        "rs_role_member": _("member"),
        "rs_role_of": _("Role of %(user)s"),
        "rs_muted_until": _("muted until %(time)s"),
        "rs_muted": _("muted"),
        "rs_banned_until": _("until %(time)s"),
        "rs_banned_forever": _("until lifted"),
        "rs_by": _("by %(user)s"),
        "rs_kick": _("Kick"),
        "rs_ban": _("Ban"),
        "rs_mute": _("Mute"),
        "rs_unmute": _("Unmute"),
        "rs_lift": _("Lift the ban"),
        "rs_action_on": _("%(action)s %(user)s"),
        "rs_saved": _("Saved."),
        "rs_done": _("Done: %(action)s %(user)s."),
        "rs_added": _("%(user)s is a member now."),
        "rs_loading": _("Loading…"),
        "rs_none": _("None."),
        "rs_more": _("More"),
        "rs_audit_entry": _("%(actor)s: %(action)s %(target)s %(detail)s"),
        "rs_audit_add_member": _("added"),
        "rs_audit_kick": _("kicked"),
        "rs_audit_ban": _("banned"),
        "rs_audit_unban": _("lifted the ban of"),
        "rs_audit_mute": _("muted"),
        "rs_audit_unmute": _("unmuted"),
        "rs_audit_role": _("changed the role of"),
        "rs_audit_room_settings": _("changed the settings"),
        "rs_audit_delete_message": _("deleted a message of"),
        "rs_audit_delete_room": _("deleted the room"),
        "rs_failed": _("That did not work: %(reason)s"),
        "removed_kicked": _("You were removed from #%(room)s by its moderators."),
        "removed_banned": _("You are banned from #%(room)s."),
        "removed_deleted": _("#%(room)s was deleted."),
        "removed_left": _("You left #%(room)s."),
        "removed_go": _("Go to the lobby"),
        "added_to": _("You were added to #%(room)s."),
        "refused_muted": _("You are muted in this room: you can read but not post."),
        "refused_read_only": _("This room is read-only: only its owners and moderators post."),
        "refused_banned": _("You are banned from this room."),
    }
