/* Room names, links and avatars. The client never builds a direct-message room name:
 * links to a person go to /dm?user=<name>, where the server names the room. */

export function isDm(room) { return room.startsWith('dm:'); }

// The other person of dm:<a>:<b> (`userKey`: the viewer's lowercased name).
export function dmPeer(room, userKey) {
  const parts = room.split(':');
  return parts[1] === userKey ? parts[2] : parts[1];
}

// What the sidebar shows for a room: its name, or the other person of a DM.
export function roomLabel(room, userKey) { return isDm(room) ? dmPeer(room, userKey) : room; }

// /rooms/<name>, colons left readable (views/ui_methods.py room_url).
export function roomUrl(room) { return '/rooms/' + encodeURIComponent(room).replace(/%3A/gi, ':'); }

// The direct conversation with `user`: the server redirects to its room.
export function dmUrl(user) { return '/dm?user=' + encodeURIComponent(user); }

// The colour class of a user's avatar: the same hash as views/ui_methods.py avatar_class,
// over the number of colours the server passes (data-avatar-hues).
export function avatarClass(name, hues) {
  let h = 0;
  const s = String(name).toLowerCase();
  for (let i = 0; i < s.length; i++) h = (Math.imul(h, 31) + s.charCodeAt(i)) >>> 0;
  return 'hue-' + (h % hues);
}

export function initial(name) { return (Array.from(String(name))[0] || '?').toUpperCase(); }

// A small avatar span, as in the online list.
export function avatarEl(name, hues, extra) {
  const avatar = document.createElement('span');
  avatar.className = 'avatar ' + (extra ? extra + ' ' : '') + avatarClass(name, hues);
  avatar.setAttribute('aria-hidden', 'true');
  avatar.textContent = initial(name);
  return avatar;
}
