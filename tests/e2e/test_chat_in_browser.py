"""Two people chat in real Chromium: live delivery, literal text, history after reload,
going offline and back, unread counts, the "new messages" divider and notifications."""

from __future__ import annotations

import asyncio

from playwright.async_api import expect

XSS = "<img src=x onerror=alert(1)>"

#: Records every value #connection-state's data-state takes, in window.__states.
RECORD_STATES = """() => {
  const el = document.getElementById('connection-state');
  window.__states = [el.dataset.state];
  new MutationObserver(() => {
    const states = window.__states;
    if (states[states.length - 1] !== el.dataset.state) states.push(el.dataset.state);
  })
    .observe(el, { attributes: true, attributeFilter: ['data-state'] });
}"""

#: A stand-in for the Notification API that records what would have been shown.
FAKE_NOTIFICATIONS = """(() => {
  const shown = [];
  const permission = () => sessionStorage.getItem('fake-permission') || 'default';
  function FakeNotification(title, options) {
    shown.push({ title, body: options && options.body });
  }
  Object.defineProperty(FakeNotification, 'permission', { get: permission });
  FakeNotification.requestPermission = () => {
    sessionStorage.setItem('fake-permission', 'granted');
    return Promise.resolve(permission());
  };
  FakeNotification.prototype.close = function () {};
  window.Notification = FakeNotification;
  window.__notifications = shown;
})();"""


async def test_two_people_chat_live(people):
    alice, bob = await people(), await people()
    await alice.register("alice")
    await bob.register("bob")
    await alice.say("hello bob")
    await expect(bob.page.locator("#messages .text").last).to_have_text("hello bob")
    await bob.say("hi alice")
    await expect(alice.page.locator("#messages .text").last).to_have_text("hi alice")
    # Both see who is online, and today's date above the first message.
    await expect(alice.page.locator("#online-list li[data-user=bob]")).to_be_visible()
    await expect(alice.page.locator("#messages li.day")).to_have_count(1)


async def test_hostile_text_is_shown_literally(people):
    alice, bob = await people(), await people()
    await alice.register("alice")
    await bob.register("bob")
    await alice.say(XSS)
    await expect(bob.page.locator("#messages .text").last).to_have_text(XSS)
    assert await bob.page.locator("#messages img").count() == 0


async def test_reload_keeps_history_and_does_not_duplicate(people):
    alice = await people()
    await alice.register("alice")
    for text in ("one", "two", "three"):
        await alice.say(text)
        await expect(alice.page.locator("#messages .text").last).to_have_text(text)
    await alice.page.reload()
    await alice.connected()
    await expect(alice.page.locator("#messages .text")).to_have_text(["one", "two", "three"])


async def test_typing_is_shown_to_the_others(people):
    alice, bob = await people(), await people()
    await alice.register("alice")
    await bob.register("bob")
    await bob.page.get_by_label("Message").press_sequentially("hm")
    await expect(alice.page.locator("#typing")).to_have_text("bob is typing…")


async def test_offline_message_is_queued_and_delivered_once(people, app):
    alice, bob = await people(), await people()
    await alice.register("alice")
    await bob.register("bob")
    page, state = alice.page, alice.page.locator("#connection-state")
    await page.evaluate(RECORD_STATES)

    await alice.context.set_offline(True)
    await expect(state).to_have_attribute("data-state", "offline")
    await expect(state).to_have_text("offline")
    await alice.say("typed while offline")
    pending = page.locator("#messages li.pending")
    await expect(pending.locator(".text")).to_have_text("typed while offline")
    await expect(pending.locator(".status")).to_have_text("sending…")
    await asyncio.sleep(0.3)
    assert await bob.page.locator("#messages").get_by_text("typed while offline").count() == 0

    await alice.context.set_offline(False)
    await alice.connected()
    await expect(bob.page.locator("#messages .text").last).to_have_text("typed while offline")
    await expect(pending).to_have_count(0)
    await asyncio.sleep(0.5)  # a duplicate would have arrived by now
    for person in (alice, bob):
        messages = person.page.locator("#messages")
        await expect(messages.get_by_text("typed while offline")).to_have_count(1)
    response = await page.request.get(app.base_url + "/api/rooms/lobby/messages")
    texts = [m["text"] for m in (await response.json())["messages"]]
    assert texts.count("typed while offline") == 1

    # The server drops every socket (a restart): "reconnecting in Ns", then back.
    app.server.chat.close_all(1012, "restart")
    await expect(page.locator("#connection-state[data-state=reconnecting]")).to_have_count(1)
    await expect(state).to_have_text("connected", timeout=10_000)
    states = await page.evaluate("window.__states")
    assert states[:3] == ["connected", "offline", "connecting"], states
    assert "reconnecting" in states and states[-1] == "connected", states
    await bob.say("after the restart")
    await expect(page.locator("#messages .text").last).to_have_text("after the restart")


async def test_unread_badge_divider_and_notifications(people):
    alice, bob = await people(), await people()
    await bob.context.add_init_script(FAKE_NOTIFICATIONS)
    await alice.register("alice")
    await bob.register("bob")
    notify = bob.page.locator("#notify-toggle")
    await expect(notify).to_have_text("Enable notifications")
    await notify.click()
    await expect(notify).to_have_text("Notifications: on")

    # Bob goes to another room; Alice writes three messages in lobby meanwhile.
    await bob.page.get_by_label("New room").fill("general")
    await bob.page.get_by_role("button", name="Create").click()
    await bob.page.wait_for_url(bob.base_url + "/rooms/general")
    await bob.connected()
    for text in ("first unread", "second unread", "third unread"):
        await alice.say(text)
        await expect(
            alice.page.locator("#messages li.message:not(.pending) .text").last
        ).to_have_text(text)
    badge = bob.page.locator("#room-list li[data-room=lobby] .badge")
    await expect(badge).to_have_text("3")
    await expect(bob.page).to_have_title("(3) general · chatroom")
    shown = await bob.page.evaluate("window.__notifications")
    assert [n["title"] for n in shown] == ["alice in #lobby"] * 3
    assert shown[0]["body"] == "first unread"

    # Back in lobby: the divider sits right above the first of the three.
    await bob.page.locator("#room-list").get_by_role("link", name="lobby").click()
    await bob.connected()
    await expect(bob.page.locator("#new-messages")).to_have_text("New messages")
    await expect(bob.page.locator("#new-messages + li.message .text")).to_have_text("first unread")
    await expect(bob.page.locator("#room-list li[data-room=lobby] .badge")).to_be_hidden()
    await expect(bob.page).to_have_title("lobby · chatroom")
