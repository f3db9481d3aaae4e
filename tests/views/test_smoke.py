from tests.helpers import body


async def test_two_users_chat(app):
    alice = await app.client("alice")
    bob = await app.client("bob")
    await alice.send("hi bob", client_id="c1")
    ack = await alice.next("ack")
    assert ack == {"type": "ack", "client_id": "c1", "id": 1, "room": "lobby"}
    for client in (alice, bob):
        msg = await client.next("message")
        assert msg["text"] == "hi bob" and msg["id"] == 1 and msg["user"] == "alice"
    response = await app.api.request("GET", "/healthz")
    assert body(response)["status"] == "ok"
