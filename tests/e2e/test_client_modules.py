"""The browser client's contract with the server (static/js/): a socket the server
closed on purpose (1008) is not reopened in a loop, the rules the client shares with
the server agree, and live messages have the server-rendered markup."""

from __future__ import annotations

import asyncio
import random
import re
import string

from playwright.async_api import expect

from chatroom.views.ui_methods import avatar_class

#: The tag, classes (less the per-message ones) and attribute names of an element
#: and its children: the shape of a message item, whatever its content.
SHAPE = """(el) => {
  const skip = /^(hue-\\d+|cont|mine|acked)$/;
  const walk = (e) => [
    e.tagName,
    [...e.classList].filter((c) => !skip.test(c)).sort().join(' '),
    [...e.getAttributeNames()].filter((a) => a !== 'title' && a !== 'id').sort().join(' '),
    [...e.children].map(walk),
  ];
  return walk(el);
}"""


async def test_a_socket_closed_for_policy_is_not_reopened(people, app):
    alice = await people()
    await alice.register("alice")
    page, state = alice.page, alice.page.locator("#connection-state")
    opened: list[str] = []
    page.on("websocket", lambda ws: opened.append(ws.url))

    app.server.chat.close_all(1008, "policy")
    await expect(state).to_have_attribute("data-state", "closed")
    await expect(state).to_have_text("Reload the page to see new messages")
    await asyncio.sleep(2)  # the first reconnect would have started within a second
    assert opened == []
    assert page.url == alice.base_url + "/"

    await page.reload()  # the session is still good: a reload connects again
    await alice.connected()


async def test_a_session_ended_elsewhere_goes_to_the_login_page(people, app):
    alice = await people()
    await alice.register("alice")
    other = await alice.context.new_page()  # another tab of the same session
    await other.goto(alice.base_url + "/rooms/lobby")
    await other.get_by_role("button", name="Log out").click()
    await other.wait_for_url(alice.base_url + "/login")
    await other.close()

    app.server.chat.close_all(1008, "session ended")
    await alice.page.wait_for_url(re.compile(r"/login\?next=%2F$"))
    alice.errors.clear()  # the 401 of the session check is expected


async def test_avatar_colours_agree_with_the_server(people):
    alice = await people()
    await alice.register("alice")
    rng = random.Random(11)
    alphabet = string.ascii_letters + string.digits + "_.-"
    names = ["alice", "Bob", "x", "_", "a.b-c", "Z" * 32]
    names += ["".join(rng.choices(alphabet, k=rng.randint(1, 32))) for _ in range(200)]
    hues = await alice.page.evaluate(
        """async (names) => {
          const { avatarClass } = await import('/static/js/names.js');
          const count = Number(document.body.dataset.avatarHues);
          return names.map((name) => avatarClass(name, count));
        }""",
        names,
    )
    assert hues == [avatar_class(None, name) for name in names]


async def test_live_messages_have_the_server_rendered_markup(people):
    alice, bob = await people(), await people()
    await alice.register("alice")
    await bob.register("bob")
    await alice.say("hello <b>bob</b>")
    live = bob.page.locator("#messages li.message").last
    await expect(live.locator(".text")).to_have_text("hello <b>bob</b>")
    # The same message as the server renders it (the page without JavaScript).
    html = await bob.page.evaluate("async () => (await fetch('/rooms/lobby')).text()")
    parsed = "new DOMParser().parseFromString(html, 'text/html')"
    first = f"{parsed}.querySelector('#messages li.message')"
    rendered = await bob.page.evaluate(f"(html) => ({SHAPE})({first})", html)
    assert await live.evaluate(SHAPE) == rendered
    assert "TIME" in repr(rendered) and "text" in repr(rendered)  # the walk went deep
    avatar = await bob.page.evaluate(f"(html) => {first}.querySelector('.avatar').className", html)
    assert await live.locator(".avatar").get_attribute("class") == avatar
